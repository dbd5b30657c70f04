// The fleet's key file (issue 11): the keys that encrypt secrets at rest and key the emergency-code
// digests. A root-owned 0600 text file, the same on every host: one key per line, `<id> <base64 of
// 32 bytes>`, '#' comments and blank lines allowed; the LAST key encrypts new secrets, earlier ones
// only decrypt (rows not re-encrypted yet by `otpgate db rotate-key`). Never in the database.

import { randomBytes } from "node:crypto";
import { ConfigError } from "../../core/errors.js";
import { createPrivateFile, readPrivateFile, writePrivateFile } from "../../platform/private-file.js";

export const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,40}$/;

export interface FleetKeys {
  /** The key id that encrypts new secrets (the last line). */
  readonly current: string;
  /** Every key by id, in file order. */
  readonly keys: ReadonlyMap<string, Buffer>;
  readonly path: string;
}

/** Parse the key file's text; `path` only for messages. Throws ConfigError naming the line. */
export function parseKeyFile(text: string, path: string): FleetKeys {
  const keys = new Map<string, Buffer>();
  let current: string | null = null;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+)\s+(\S+)$/.exec(line);
    if (!m) throw new ConfigError(`${path} line ${i + 1}: expected "<key id> <base64 key>"; fix the line or copy the key file again from the host that created it`);
    const [, id, b64] = m as unknown as [string, string, string];
    if (!KEY_ID.test(id)) throw new ConfigError(`${path} line ${i + 1}: a key id is 1-40 letters, digits, '.', '_' or '-'`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new ConfigError(`${path} line ${i + 1} (key ${id}): the key is not base64`);
    const key = Buffer.from(b64, "base64");
    if (key.length !== KEY_BYTES) {
      key.fill(0);
      throw new ConfigError(`${path} line ${i + 1} (key ${id}): the key is ${key.length} bytes, it must be ${KEY_BYTES}; copy the key file again from the host that created it`);
    }
    if (keys.has(id)) throw new ConfigError(`${path} line ${i + 1}: the key id ${id} appears twice; each key needs its own id`);
    keys.set(id, key);
    current = id;
  }
  if (current === null) throw new ConfigError(`${path} holds no key; create it with otpgate db migrate --create-key-file (once, then copy it to every host)`);
  return { current, keys, path };
}

/** Read the key file (root's own, 0600, never through a symlink). */
export function readKeyFile(path: string): FleetKeys {
  const file = readPrivateFile(path, { what: "the fleet key file", maxBytes: 64 * 1024, allowedMode: 0o600, follow: false, error: ConfigError });
  if (file === null) {
    throw new ConfigError(`the key file ${path} does not exist: create it on the first host with otpgate db migrate --create-key-file, then copy it unchanged (mode 0600, owner root) to every host`);
  }
  try {
    return parseKeyFile(file.bytes.toString("latin1"), path);
  } finally {
    file.bytes.fill(0);
  }
}

/** A fresh key line: a new id (date and random) and 32 random bytes. */
export function newKeyLine(now: Date, taken: ReadonlySet<string> = new Set()): { id: string; line: string } {
  for (;;) {
    const id = `k${now.toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(3).toString("hex")}`;
    if (taken.has(id)) continue;
    const key = randomBytes(KEY_BYTES);
    const line = `${id} ${key.toString("base64")}\n`;
    key.fill(0);
    return { id, line };
  }
}

const HEADER = "# otpgate fleet key file: the same file on every host (mode 0600, owner root).\n" + "# The last key encrypts new secrets; the others still decrypt rows not re-encrypted yet.\n";

/** Create the key file with one key; false when it exists already (nothing changed). */
export function createKeyFile(path: string, now: Date): boolean {
  const { line } = newKeyLine(now);
  return createPrivateFile(path, HEADER + line, "the fleet key file");
}

/** Append a new key (it becomes the current one); returns its id. */
export function appendKey(path: string, now: Date): string {
  const keys = readKeyFile(path);
  const file = readPrivateFile(path, { what: "the fleet key file", maxBytes: 64 * 1024, allowedMode: 0o600, follow: false, error: ConfigError })!;
  let text = file.bytes.toString("latin1");
  file.bytes.fill(0);
  if (text !== "" && !text.endsWith("\n")) text += "\n";
  const { id, line } = newKeyLine(now, new Set(keys.keys.keys()));
  writePrivateFile(path, text + line, "the fleet key file");
  return id;
}

/** Remove the keys with these ids (never the current one); returns what was removed. */
export function removeKeys(path: string, ids: ReadonlySet<string>): string[] {
  const keys = readKeyFile(path);
  const file = readPrivateFile(path, { what: "the fleet key file", maxBytes: 64 * 1024, allowedMode: 0o600, follow: false, error: ConfigError })!;
  const text = file.bytes.toString("latin1");
  file.bytes.fill(0);
  const removed: string[] = [];
  const kept = text.split("\n").filter((raw) => {
    const id = /^\s*(\S+)\s+\S+\s*$/.exec(raw.replace(/\r$/, ""))?.[1];
    if (id !== undefined && !id.startsWith("#") && ids.has(id) && id !== keys.current) {
      removed.push(id);
      return false;
    }
    return true;
  });
  if (removed.length > 0) writePrivateFile(path, kept.join("\n"), "the fleet key file");
  return removed;
}
