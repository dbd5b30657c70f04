// The server's own key (32 random bytes in a root-only file under its state directory), created on
// first start and kept across restarts: it keys the account fingerprints the API hands out, so a
// front-end can tell that a secret changed without learning anything about it.

import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../../core/errors.js";
import { fsyncDir } from "../../platform/atomic-file.js";

export const SERVER_KEY_BYTES = 32;

function readKey(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    throw new ConfigError(`cannot read the server key ${path} (${code}): it must be a regular file (not a symlink) owned by root, mode 0600; remove it to have a new one made`);
  }
  try {
    const st = fstatSync(fd);
    const euid = process.geteuid?.() ?? 0;
    if (!st.isFile() || st.uid !== euid || (st.mode & 0o077) !== 0 || st.size !== SERVER_KEY_BYTES) {
      throw new ConfigError(
        `${path} must be a regular file of ${SERVER_KEY_BYTES} bytes owned by uid ${euid} with mode 0600 (it is 0${(st.mode & 0o777).toString(8)}, uid ${st.uid}, ${st.size} bytes); remove it to have a new one made (account fingerprints change once)`,
      );
    }
    const key = Buffer.alloc(SERVER_KEY_BYTES);
    if (readSync(fd, key, 0, SERVER_KEY_BYTES, 0) !== SERVER_KEY_BYTES) throw new ConfigError(`${path} could not be read in full; remove it to have a new one made`);
    return key;
  } finally {
    closeSync(fd);
  }
}

/** The key in `path`, made (0600, O_EXCL, fsynced) when there is none. */
export function loadServerKey(path: string): Buffer {
  const existing = readKey(path);
  if (existing) return existing;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const key = randomBytes(SERVER_KEY_BYTES);
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    // Made by another start a moment ago: use that one.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return readKey(path) ?? key;
    throw new ConfigError(`cannot create the server key ${path} (${(err as NodeJS.ErrnoException).code}): check that ${dirname(path)} exists and is root's (--state-dir)`);
  }
  try {
    writeSync(fd, key);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dirname(path));
  return key;
}
