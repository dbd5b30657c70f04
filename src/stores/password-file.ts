// The gateway's password file on disk (/etc/otpgate/passwords): owned by the gateway's user (root),
// mode 0600, never a symlink; changed under a lock through a temp file and rename, so the gateway
// (which reads it at every login) sees the old file or the new one, never half of one.

import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync, renameSync } from "node:fs";
import { basename, dirname } from "node:path";
import { ConfigError, UsageError } from "../core/errors.js";
import { parsePasswordEntries, withPasswordEntry } from "../core/web/password-entries.js";
import { fsyncDir, removeQuietly, removeStaleTemps, writeTemp } from "../platform/atomic-file.js";
import { acquireLock } from "../platform/lock.js";

export const DEFAULT_PASSWORD_FILE = "/etc/otpgate/passwords";
const MAX_BYTES = 1024 * 1024;

/** The file's text, or null when it does not exist; refuses anything but a private regular file. */
function readChecked(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw new ConfigError(`${path} is a symbolic link; otpgate only reads the password file itself: replace the link with the file`);
    throw new ConfigError(`cannot read ${path} (${code})`);
  }
  try {
    const st = fstatSync(fd);
    const euid = process.geteuid?.() ?? 0;
    if (!st.isFile()) throw new ConfigError(`${path} is not a regular file`);
    if (st.uid !== euid) throw new ConfigError(`${path} must be owned by uid ${euid}, the user the gateway runs as: chown ${euid} ${path}`);
    if ((st.mode & 0o077) !== 0) throw new ConfigError(`${path} must not be readable or writable by others (it holds password hashes): chmod 600 ${path}`);
    if (st.size > MAX_BYTES) throw new ConfigError(`${path} is larger than 1 MiB; it is not a password file`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } finally {
    closeSync(fd);
  }
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
