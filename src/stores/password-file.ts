// The gateway's password file on disk (/etc/otpgate/passwords): owned by the gateway's user (root),
// mode 0600, never a symlink; changed under a lock through a temp file and rename, so the gateway
// (which reads it at every login) sees the old file or the new one, never half of one.

import { createHash } from "node:crypto";
import { mkdirSync, renameSync } from "node:fs";
import { basename, dirname } from "node:path";
import { ConfigError, UsageError } from "../core/errors.js";
import { parsePasswordEntries, withPasswordEntry } from "../core/web/password-entries.js";
import { fsyncDir, removeQuietly, removeStaleTemps, writeTemp } from "../platform/atomic-file.js";
import { acquireLock } from "../platform/lock.js";
import { readPrivateFile } from "../platform/private-file.js";

export const DEFAULT_PASSWORD_FILE = "/etc/otpgate/passwords";
const MAX_BYTES = 1024 * 1024;

/** The file's text, or null when it does not exist; refuses anything but a private regular file. */
function readChecked(path: string): string | null {
  const euid = process.geteuid?.() ?? 0;
  const file = readPrivateFile(path, {
    what: "the gateway's password hashes",
    maxBytes: MAX_BYTES,
    ownerUid: euid,
    allowedMode: 0o600,
    follow: false,
    explain: (problem) => {
      if (problem === "symlink") return `${path} is a symbolic link; otpgate only reads the password file itself: replace the link with the file`;
      if (problem === "owner") return `${path} must be owned by uid ${euid}, the user the gateway runs as: chown ${euid} ${path}`;
      if (problem === "mode") return `${path} must not be readable or writable by others (it holds password hashes): chmod 600 ${path}`;
      if (problem === "too-large") return `${path} is larger than 1 MiB; it is not a password file`;
      return undefined;
    },
  });
  return file ? file.bytes.toString("utf8") : null;
}

/** user -> argon2id hash, or null when the file does not exist yet (refuses a file it could not use). */
export function existingPasswords(path: string): Map<string, string> | null {
  const text = readChecked(path);
  return text === null ? null : parsePasswordEntries(text, path);
}

/** user -> argon2id hash. */
export function readPasswordFile(path: string): Map<string, string> {
  const text = readChecked(path);
  if (text === null) throw new ConfigError(`the password file ${path} does not exist; create it by setting a first password: otpgate passwd USER --file ${path}`);
  return parsePasswordEntries(text, path);
}

/** Set (or with hash null, remove) a user's password hash; creates the file and its directory. */
export async function updatePasswordFile(path: string, user: string, hash: string | null): Promise<void> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // Any local user could bind this name first; that only makes otpgate passwd wait and give up.
  const lock = await acquireLock(`\0otpgate-passwd-${createHash("sha256").update(path).digest("hex").slice(0, 40)}`);
  try {
    const text = readChecked(path);
    if (hash === null && (text === null || !parsePasswordEntries(text, path).has(user))) throw new UsageError(`${user} has no password in ${path}; nothing to remove`);
    const next = withPasswordEntry(text ?? "", user, hash, path);
    removeStaleTemps(dir, basename(path));
    const tmp = writeTemp(path, next, 0o600);
    try {
      renameSync(tmp, path);
    } catch (err) {
      removeQuietly(tmp);
      throw new ConfigError(`could not replace ${path} (${(err as NodeJS.ErrnoException).code}); nothing was changed`);
    }
    fsyncDir(dir);
  } finally {
    await lock.release();
  }
}
