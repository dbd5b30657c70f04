// Crash-safe file replacement: a temp file next to the target (O_EXCL, O_NOFOLLOW, owner and mode
// set before any byte is written, fsync), then rename or link, then fsync of the directory. Temp
// files left by a writer killed mid-way carry a recognisable suffix: a writer holding the file's
// lock uses one fixed name (lockedTempPath), which the next holder removes without listing the
// directory; a new state file (enroll, also through the resident server) uses another fixed name
// (newFileTempPath), removed by name when it is old enough to be a killed writer's leftover.
// Only one-shot writers of other files (otpgate passwd) use unique names and sweep the directory.
// A resident process (otpgate server) must never list a directory: its size is the user's choice
// (red team rt1, F3: 400,000 files in ~ stalled every login while the server listed them).

import { closeSync, constants, fchmodSync, fchownSync, fsyncSync, lstatSync, openSync, readdirSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

const TEMP_MARK = "~otpgate-";

/**
 * Write `text` to a new temp file next to `path` (O_EXCL, O_NOFOLLOW), with `mode` and, when
 * running as root, `owner`; fsync it. Returns the temp file's path. Removes it on failure.
 */
export function writeTemp(path: string, text: string, mode: number, owner?: { uid: number; gid: number }): string {
  return writeTempAt(`${path}${TEMP_MARK}${uniqueSuffix()}`, text, mode, owner);
}

/**
 * The temp name of a writer that holds the file's lock: only one holder at a time uses it, so a
 * file by that name is a killed holder's leftover, removed by name (O(1), no directory listing).
 */
export function lockedTempPath(path: string): string {
  return `${path}${TEMP_MARK}locked`;
}

/** After this long a new-file temp is a killed writer's leftover, not a writer at work. */
export const NEW_FILE_TEMP_STALE_MS = 10 * 60_000;

/** The fixed temp name for creating `path` anew (no lock exists yet): O_EXCL makes two writers clash safely. */
export function newFileTempPath(path: string): string {
  return `${path}${TEMP_MARK}new`;
}

/**
 * Remove `newFileTempPath(path)` by name when it is older than NEW_FILE_TEMP_STALE_MS (a writer
 * killed mid-way); a younger one belongs to a writer at work and is left alone (the caller's
 * O_EXCL then fails). Constant work: the directory is never listed.
 */
export function removeStaleNewFileTemp(path: string, nowMs: number): void {
  const tmp = newFileTempPath(path);
  try {
    if (nowMs - lstatSync(tmp).mtimeMs > NEW_FILE_TEMP_STALE_MS) unlinkSync(tmp);
  } catch {
    // none, or gone
  }
}

/** writeTemp with a given temp path (created with O_EXCL: an existing name fails, never reused). */
export function writeTempAt(tmp: string, text: string, mode: number, owner?: { uid: number; gid: number }): string {
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    if (owner && process.geteuid?.() === 0) fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, mode);
    const data = Buffer.from(text, "latin1");
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    data.fill(0);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    removeQuietly(tmp);
    throw err;
  }
  closeSync(fd);
  return tmp;
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

let tempCounter = 0;

/** 12 hex digits, unique per process and call; O_EXCL makes a clash fail safely, not overwrite. */
function uniqueSuffix(): string {
  const n = (process.pid * 0x10000 + (Number(process.hrtime.bigint() & 0xffffn) ^ tempCounter++)) % 0x1000000000000;
  return n.toString(16).padStart(12, "0");
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Temp files of otpgate writers that died (kill -9) before their rename; safe to drop under the lock. */
export function removeStaleTemps(dir: string, base: string): void {
  const prefix = base + TEMP_MARK;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(prefix) && /^[0-9a-f]{12}$/.test(name.slice(prefix.length))) {
      try {
        unlinkSync(join(dir, name));
      } catch {
        // not ours to remove, or gone
      }
    }
  }
}
