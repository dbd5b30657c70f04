// The gateway's private files (keys, persisted sessions): read only when they are regular files of
// the running user with no group/other permission bits, never through a symlink; replaced
// atomically (temp file with the fixed locked name, fsync, rename, fsync of the directory) by a
// writer that holds the file's lock. A failed write leaves the old file as it was.

import { closeSync, constants, fstatSync, linkSync, openSync, readSync, renameSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../core/errors.js";
import { fsyncDir, lockedTempPath, removeQuietly, writeTempAt } from "./atomic-file.js";

export interface PrivateFile {
  readonly bytes: Buffer;
  /** dev:ino:size:mtime of what was read (a writer checks it again under the lock). */
  readonly version: string;
  readonly mtimeMs: number;
}

const code = (err: unknown): string => (err as NodeJS.ErrnoException)?.code ?? "unknown error";

/** The file's bytes, or null when it does not exist. `what` names the file's role in messages. */
export function readPrivateFile(path: string, what: string, maxBytes: number): PrivateFile | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if (code(err) === "ENOENT") return null;
    if (code(err) === "ELOOP") throw new ConfigError(`${path} (${what}) is a symbolic link; replace it with the file itself, owned by the gateway's user, mode 0600`);
    if (code(err) === "EACCES") throw new ConfigError(`cannot read ${path} (${what}): permission denied; run this as root`);
    throw new ConfigError(`cannot open ${path} (${what}): ${code(err)}`);
  }
  try {
    const st = fstatSync(fd);
    const uid = process.geteuid?.() ?? st.uid;
    if (!st.isFile()) throw new ConfigError(`${path} (${what}) is not a regular file; remove it`);
    if (st.uid !== uid) throw new ConfigError(`${path} (${what}) belongs to uid ${st.uid}, not to the gateway's user (uid ${uid}): chown ${uid} ${path}`);
    if ((st.mode & 0o077) !== 0) throw new ConfigError(`${path} (${what}) has mode 0${(st.mode & 0o777).toString(8)}; it must be readable by its owner only: chmod 600 ${path}`);
    if (st.size > maxBytes) throw new ConfigError(`${path} (${what}) is larger than ${maxBytes} bytes; it is not a file otpgate wrote`);
    const bytes = Buffer.alloc(st.size);
    let off = 0;
    while (off < bytes.length) {
      const n = readSync(fd, bytes, off, bytes.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return { bytes: bytes.subarray(0, off), version: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`, mtimeMs: st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** Replace (or create) the file with `text`, mode 0600; the caller holds the file's lock. */
export function writePrivateFile(path: string, text: string, what: string): void {
  const tmp = lockedTempPath(path);
  removeQuietly(tmp); // a killed earlier holder's leftover
  try {
    writeTempAt(tmp, text, 0o600);
    renameSync(tmp, path);
    fsyncDir(dirname(path));
  } catch (err) {
    removeQuietly(tmp);
    throw new ConfigError(`could not write ${path} (${what}): ${code(err)}; nothing was changed: check that ${dirname(path)} exists and is writable by root`);
  }
}

/** Create the file with `text` only if it does not exist yet (link(2): never overwrites). false: it exists. */
export function createPrivateFile(path: string, text: string, what: string): boolean {
  const tmp = `${path}~otpgate-${process.pid.toString(16).padStart(12, "0")}`;
  removeQuietly(tmp);
  try {
    writeTempAt(tmp, text, 0o600);
    linkSync(tmp, path);
    unlinkSync(tmp);
    fsyncDir(dirname(path));
    return true;
  } catch (err) {
    removeQuietly(tmp);
    if (code(err) === "EEXIST") return false;
    throw new ConfigError(`could not create ${path} (${what}): ${code(err)}; check that ${dirname(path)} exists and is writable by root`);
  }
}
