// The gateway's keys: several keys with ids in one root-only file (keys_file); the newest seals,
// older ones still open what they sealed until they are retired. Every use has its own purpose:
// a subkey derived with HKDF per (key, purpose), and the purpose (with the key id) bound into
// AES-GCM as associated data, so a session cookie, a CSRF token and an enrollment draft can never
// be taken for one another. Tokens read `v1.<kid>.<base64url(iv | tag | ciphertext)>`.
//
// The file: a text file written by otpgate (see serializeKeyFile), or the 64 raw bytes earlier
// versions wrote (read as key id 0; the first rotation rewrites the file in the text form and keeps
// that key). It also holds a lock secret that never changes, so only root can compute the names of
// the locks that guard the keys and sessions files (another local user cannot squat them).

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../core/errors.js";
import type { Random } from "../ports/index.js";
import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { acquireLock, type HeldLock } from "./lock.js";
import { createPrivateFile, readPrivateFile, writePrivateFile } from "./private-file.js";

export type Purpose = "session" | "csrf" | "enroll-draft" | "secret-fingerprint" | "device";

export interface KeyEntry {
  readonly kid: number;
  /** When the key was added (Unix ms); the legacy key: the file's modification time. */
  readonly createdAt: number;
  readonly material: Buffer;
}

export interface KeyFile {
  readonly lockSecret: Buffer;
  /** Oldest first; the last one seals. */
  readonly keys: readonly KeyEntry[];
  /** Still the 64 raw bytes of earlier versions. */
  readonly legacy: boolean;
  /**
   * The gateway created sessions_file next to these keys (line "sessions created"): a sessions file
   * missing later was deleted (logouts would come back), not "nothing revoked yet".
   */
  readonly sessionsFileCreated?: boolean;
}

const WHAT = "the gateway's keys";
const HEADER = "otpgate-gateway-keys 1";
const MAX_FILE = 64 * 1024;
const MAX_KID = 0xffff_ffff;
const SALT = Buffer.from("otpgate gateway keyring v1");
const B64 = /^[A-Za-z0-9_-]+$/;

function hkdf(material: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", material, SALT, Buffer.from(info), 32));
}

export function parseKeyFile(bytes: Buffer, mtimeMs: number, path: string): KeyFile {
  const text = bytes.toString("latin1");
  if (bytes.length === 64 && !text.startsWith(HEADER)) {
    const material = Buffer.from(bytes);
    return { lockSecret: hkdf(material, "lock"), keys: [{ kid: 0, createdAt: Math.floor(mtimeMs), material }], legacy: true, sessionsFileCreated: false };
  }
  const bad = (why: string) => new ConfigError(`${path} is not a keys file otpgate wrote (${why}); restore it from a backup, or delete it to start with a new key (every session ends)`);
  const lines = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  if (lines[0] !== HEADER) throw bad("no header line");
  let lockSecret: Buffer | null = null;
  let sessionsFileCreated = false;
  const keys: KeyEntry[] = [];
  for (const line of lines.slice(1)) {
    const f = line.split(" ");
    if (f[0] === "lock" && f.length === 2 && B64.test(f[1]!) && !lockSecret) {
      lockSecret = Buffer.from(f[1]!, "base64url");
      if (lockSecret.length !== 32) throw bad("the lock secret is not 32 bytes");
    } else if (f[0] === "key" && f.length === 4 && /^[0-9]{1,10}$/.test(f[1]!) && /^[0-9]{1,16}$/.test(f[2]!) && B64.test(f[3]!)) {
      const kid = Number(f[1]);
      const material = Buffer.from(f[3]!, "base64url");
      if (kid > MAX_KID || (material.length !== 32 && !(kid === 0 && material.length === 64))) throw bad(`key ${f[1]} is malformed`);
      if (keys.length && keys[keys.length - 1]!.kid >= kid) throw bad("key ids are not increasing");
      keys.push({ kid, createdAt: Number(f[2]), material });
    } else if (line === "sessions created" && !sessionsFileCreated) {
      sessionsFileCreated = true;
    } else throw bad(`unexpected line "${line.slice(0, 20)}"`);
  }
  if (!lockSecret) throw bad("no lock secret");
  if (keys.length === 0) throw bad("no key");
  return { lockSecret, keys, legacy: false, sessionsFileCreated };
}

export function serializeKeyFile(file: KeyFile): string {
  return [
    "# otpgate gateway keys: root only, never copy or edit. Rotate: otpgate gateway keys --rotate --config FILE",
    HEADER,
    `lock ${file.lockSecret.toString("base64url")}`,
    ...file.keys.map((k) => `key ${k.kid} ${k.createdAt} ${k.material.toString("base64url")}`),
    ...(file.sessionsFileCreated ? ["sessions created"] : []),
    "",
  ].join("\n");
}

/** A new key file with one key (id 1). */
export function newKeyFile(now: number, random: Random): KeyFile {
  return { lockSecret: Buffer.from(random.bytes(32)), keys: [{ kid: 1, createdAt: now, material: Buffer.from(random.bytes(32)) }], legacy: false };
}

/** Sealing and MACs with purpose-bound subkeys of the keys in a KeyFile. */
export class Keyring {
  private readonly byKid: Map<number, KeyEntry>;
  private readonly subkeys = new Map<string, Buffer>();
  readonly newest: KeyEntry;

  constructor(
    readonly file: KeyFile,
    private readonly random: Random,
  ) {
    this.byKid = new Map(file.keys.map((k) => [k.kid, k]));
    this.newest = file.keys[file.keys.length - 1]!;
  }

  get kids(): number[] {
    return [...this.byKid.keys()];
  }

  private subkey(kid: number, purpose: Purpose): Buffer | null {
    const id = `${kid}:${purpose}`;
    let key = this.subkeys.get(id);
    if (!key) {
      const entry = this.byKid.get(kid);
      if (!entry) return null;
      this.subkeys.set(id, (key = hkdf(entry.material, `purpose:${purpose}`)));
    }
    return key;
  }

  /** AES-256-GCM of the JSON value with the newest key's subkey for `purpose`. */
  seal(purpose: Purpose, value: unknown): string {
    const kid = this.newest.kid;
    const iv = Buffer.from(this.random.bytes(12));
    const cipher = createCipheriv("aes-256-gcm", this.subkey(kid, purpose)!, iv);
    cipher.setAAD(Buffer.from(`otpgate.v1.${purpose}.${kid}`));
    const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
    return `v1.${kid}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url")}`;
  }

  /** The sealed value; null when tampered with, truncated, sealed for another purpose or with a key no longer here. */
  open(purpose: Purpose, token: string): unknown {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const key = this.subkey(parsed.kid, purpose);
    if (!key || parsed.body.length < 29) return null;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, parsed.body.subarray(0, 12));
      decipher.setAAD(Buffer.from(`otpgate.v1.${purpose}.${parsed.kid}`));
      decipher.setAuthTag(parsed.body.subarray(12, 28));
      const plain = Buffer.concat([decipher.update(parsed.body.subarray(28)), decipher.final()]);
      return JSON.parse(plain.toString("utf8")) as unknown;
    } catch {
      return null;
    }
  }

  /** `v1.<kid>.<base64url HMAC-SHA256 (first `bytes` bytes)>` of data, with the newest key (or `kid`). */
  mac(purpose: Purpose, data: string, bytes = 32, kid = this.newest.kid): string | null {
    const key = this.subkey(kid, purpose);
    if (!key) return null;
    return `v1.${kid}.${createHmac("sha256", key).update(`${purpose}\0${data}`).digest().subarray(0, bytes).toString("base64url")}`;
  }

  /** The MAC given was made for `data` with one of the keys here (compared in constant time). */
  macValid(purpose: Purpose, data: string, given: string | undefined, bytes = 32): boolean {
    if (!given) return false;
    const parsed = parseToken(given);
    if (!parsed) return false;
    const expected = this.mac(purpose, data, bytes, parsed.kid);
    if (!expected) return false;
    const a = Buffer.from(expected);
    const b = Buffer.from(given);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** The lock name for a file guarded with this key file's lock secret. */
  lockName(path: string): string {
    return privateLockName(this.file.lockSecret, path);
  }
}

/** The lock name for `path`, from its resolved spelling (existing directories through realpath), so every spelling shares one lock. */
export function privateLockName(lockSecret: Buffer, path: string): string {
  return `\0otpgate-gw-${createHmac("sha256", lockSecret)
    .update(`lock\0${canonicalPath(path)}`)
    .digest("hex")
    .slice(0, 40)}`;
}

function canonicalPath(path: string): string {
  const absolute = resolve(path);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

/**
 * Record in the keys file that the sessions file exists (under the keys file's lock; the keys are
 * kept as they are). A file of the 64-byte legacy form is left alone (its first rotation converts it).
 */
export async function recordSessionsFile(path: string): Promise<KeyFile | null> {
  const first = readKeyFile(path);
  if (!first || first.legacy || first.sessionsFileCreated) return first;
  let lock: HeldLock;
  try {
    lock = await acquireLock(privateLockName(first.lockSecret, path), { timeoutMs: 10_000 });
  } catch {
    throw new ConfigError(`${path} is locked by another otpgate process for too long; try again`);
  }
  try {
    const current = readKeyFile(path);
    if (!current || current.legacy || current.sessionsFileCreated) return current;
    const next: KeyFile = { ...current, sessionsFileCreated: true };
    writePrivateFile(path, serializeKeyFile(next), WHAT);
    return next;
  } finally {
    await lock.release();
  }
}

function parseToken(token: string): { kid: number; body: Buffer } | null {
  if (token.length > 4096) return null;
  const m = /^v1\.([0-9]{1,10})\.([A-Za-z0-9_-]+)$/.exec(token);
  if (!m) return null;
  return { kid: Number(m[1]), body: Buffer.from(m[2]!, "base64url") };
}

/** The key file at `path`, or null when there is none. */
export function readKeyFile(path: string): KeyFile | null {
  const uid = process.geteuid?.() ?? null;
  const file = readPrivateFile(path, { what: WHAT, maxBytes: MAX_FILE, follow: false, ownerUid: uid, ownerName: `the gateway's user (uid ${uid})` });
  return file ? parseKeyFile(file.bytes, file.mtimeMs, path) : null;
}

/** The keyring in `path`; a new file with one key when there is none (mode 0600, never overwriting). */
export function loadOrCreateKeyring(path: string, now: number, random: Random): Keyring {
  const existing = readKeyFile(path);
  if (existing) return new Keyring(existing, random);
  createPrivateFile(path, serializeKeyFile(newKeyFile(now, random)), WHAT);
  const created = readKeyFile(path);
  if (!created) throw new ConfigError(`${path} (${WHAT}) vanished right after it was created; check what else writes there`);
  return new Keyring(created, random);
}

export interface RotateOptions {
  readonly rotate: boolean;
  readonly retireOld: boolean;
  readonly force: boolean;
  /** The absolute session lifetime: no session sealed by an older key outlives the newest key by more. */
  readonly absoluteMs: number;
  /** How long a running gateway may take to notice a new key (it checks the file every second). */
  readonly noticeMs?: number;
}

export interface RotateResult {
  readonly added: KeyEntry | null;
  readonly retired: readonly number[];
  readonly file: KeyFile;
}

/** Under the keys file's lock: retire keys older than the newest (when allowed), then add a new key. The file must exist. */
export async function rotateKeys(path: string, now: number, random: Random, options: RotateOptions): Promise<RotateResult> {
  const first = readKeyFile(path);
  if (!first) throw new ConfigError(`${path} does not exist: the gateway creates it when it first starts; nothing to rotate`);
  let lock: HeldLock;
  try {
    lock = await acquireLock(privateLockName(first.lockSecret, path), { timeoutMs: 10_000 });
  } catch {
    throw new ConfigError(`${path} is locked by another otpgate process for too long; nothing was changed, try again`);
  }
  try {
    const current = readKeyFile(path);
    if (!current) throw new ConfigError(`${path} was removed while it was being rotated; nothing was changed`);
    let keys = [...current.keys];
    const retired: number[] = [];
    if (options.retireOld) {
      const newest = keys[keys.length - 1]!;
      const safeAt = newest.createdAt + options.absoluteMs + (options.noticeMs ?? 60_000);
      if (keys.length > 1 && now < safeAt && !options.force) {
        throw new ConfigError(
          `the newest key (id ${newest.kid}) is younger than the absolute session lifetime: sessions sealed with older keys may still be open; retire after ${new Date(safeAt).toISOString()}, or pass --force to end them now; nothing was changed`,
        );
      }
      retired.push(...keys.slice(0, -1).map((k) => k.kid));
      keys = keys.slice(-1);
    }
    let added: KeyEntry | null = null;
    if (options.rotate) {
      const kid = keys[keys.length - 1]!.kid + 1;
      if (kid > MAX_KID) throw new ConfigError(`${path}: no key ids left; delete the file to start with a new key (every session ends)`);
      added = { kid, createdAt: now, material: Buffer.from(random.bytes(32)) };
      keys.push(added);
    }
    const next: KeyFile = { lockSecret: current.lockSecret, keys, legacy: false, sessionsFileCreated: current.sessionsFileCreated === true };
    if (added || retired.length || current.legacy) writePrivateFile(path, serializeKeyFile(next), WHAT);
    return { added, retired, file: next };
  } finally {
    await lock.release();
  }
}
