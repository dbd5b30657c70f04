// The google-authenticator state file on disk: refuses symlinks, non-regular files, wrong owners,
// loose permissions, oversized or binary content; updates under an exclusive lock with a
// compare-and-swap check, through a temp file in the same directory (fsync, rename, fsync dir),
// keeping the file's owner and mode.

import { closeSync, constants, fstatSync, linkSync, lstatSync, openSync, readSync, renameSync, statSync, unlinkSync, type BigIntStats } from "node:fs";
import { basename, dirname } from "node:path";
import { ENROLL_HINT, StateFileError } from "../core/errors.js";
import { secretLine } from "../formats/ga-document.js";
import { fsyncDir, removeQuietly, removeStaleTemps, writeTemp } from "../platform/atomic-file.js";
import { acquireLock, lockName } from "../platform/lock.js";
import type { AccountStore, CommitResult, LockedAccount } from "../ports/index.js";

export const MAX_STATE_FILE_BYTES = 64 * 1024;

export interface FileStoreOptions {
  readonly path: string;
  /** Expected owner of the file. */
  readonly owner: { readonly uid: number; readonly name: string };
  /** Reference `no_strict_owner` when false. */
  readonly strictOwner: boolean;
  /** Reference `allowed_perm` (default 0600): permission bits beyond these are refused. */
  readonly allowedPerm: number;
  readonly lockTimeoutMs?: number;
}

interface Snapshot {
  readonly text: string;
  readonly version: string;
  readonly stat: BigIntStats;
}

const octal = (mode: number) => "0" + (mode & 0o7777).toString(8).padStart(3, "0");

function versionOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? "unknown error";
}

export class FileAccountStore implements AccountStore {
  constructor(private readonly options: FileStoreOptions) {}

  get path(): string {
    return this.options.path;
  }

  /** Read and check the file without locking (for status displays). null when it does not exist. */
  peek(): string | null {
    return this.read()?.text ?? null;
  }

  private read(): Snapshot | null {
    const { path } = this.options;
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (err) {
      const code = errnoOf(err);
      if (code === "ENOENT") return null;
      if (code === "ELOOP") {
        throw new StateFileError(`${path} is a symbolic link; otpgate never follows or replaces symlinks: replace it with the file itself (cp --remove-destination "$(readlink -f ${path})" ${path})`);
      }
      if (code === "EACCES") {
        throw new StateFileError(`cannot read ${path}: permission denied; run as the file's owner or as root (with --user NAME)`);
      }
      if (code === "ENOTDIR") return null;
      throw new StateFileError(`cannot open ${path}: ${code}`);
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      this.check(st);
      const size = Number(st.size);
      const buf = Buffer.alloc(size + 1);
      let got = 0;
      for (;;) {
        const n = readSync(fd, buf, got, buf.length - got, null);
        if (n === 0) break;
        got += n;
        if (got === buf.length) break;
      }
      if (got !== size) {
        throw new StateFileError(`${path} changed size while it was read; try again`);
      }
      if (buf.subarray(0, size).includes(0)) {
        buf.fill(0);
        throw new StateFileError(`${path} contains NUL bytes (binary data), so it is not a google-authenticator state file; restore it from a backup or ${ENROLL_HINT}`);
      }
      const text = buf.toString("latin1", 0, size);
      buf.fill(0);
      return { text, version: versionOf(st), stat: st };
    } finally {
      closeSync(fd);
    }
  }

  private check(st: BigIntStats): void {
    const { path, owner, strictOwner, allowedPerm } = this.options;
    if (!st.isFile()) {
      const what = st.isDirectory() ? "a directory" : "not a regular file";
      throw new StateFileError(`${path} is ${what}; the state file must be a regular file: remove it and ${ENROLL_HINT}`);
    }
    const mode = Number(st.mode) & 0o7777;
    if ((mode & 0o3777 & ~allowedPerm) !== 0) {
      throw new StateFileError(`${path} has permissions ${octal(mode)}, more permissive than ${octal(allowedPerm)}: anyone who can read it can copy the secret; run chmod 600 ${path}`);
    }
    if (strictOwner && Number(st.uid) !== owner.uid) {
      throw new StateFileError(`${path} must be owned by ${owner.name} (uid ${owner.uid}), not uid ${st.uid}: run chown ${owner.name} ${path}, or pass --user with the right account`);
    }
    if (st.size < 1n || st.size > BigInt(MAX_STATE_FILE_BYTES)) {
      throw new StateFileError(
        st.size < 1n
          ? `${path} is empty; ${ENROLL_HINT}`
          : `${path} is ${st.size} bytes; a state file is at most ${MAX_STATE_FILE_BYTES} bytes: restore it from a backup or ${ENROLL_HINT}`,
      );
    }
  }

  private currentVersion(): string | null {
    try {
      const st = lstatSync(this.options.path, { bigint: true });
      return st.isFile() ? versionOf(st) : "not-a-file";
    } catch {
      return null;
    }
  }

  async acquire(): Promise<LockedAccount | null> {
    const { path } = this.options;
    const dir = dirname(path);
    for (let attempt = 0; attempt < 3; attempt++) {
      const first = this.read();
      if (!first) return null;
      const dirStat = statSync(dir, { bigint: true });
      const secret = secretLine(first.text);
      const lock = await acquireLock(lockName(secret, [String(dirStat.dev), String(dirStat.ino), basename(path)]), {
        timeoutMs: this.options.lockTimeoutMs ?? 5000,
      });
      let snapshot: Snapshot | null;
      try {
        // Usually nothing changed while we waited for the lock: then the first read is current.
        snapshot = this.currentVersion() === first.version ? first : this.read();
      } catch (err) {
        await lock.release();
        throw err;
      }
      if (!snapshot || secretLine(snapshot.text) !== secret) {
        await lock.release();
        if (!snapshot) return null;
        continue;
      }
      const held = snapshot;
      return {
        text: held.text,
        version: held.version,
        location: path,
        commit: async (text) => this.commit(held, text),
        release: () => lock.release(),
      };
    }
    throw new StateFileError(`${path} keeps being replaced while otpgate reads it; try again`);
  }

  /** Atomic replace; call only while holding the lock. */
  private commit(held: Snapshot, text: string): CommitResult {
    const { path } = this.options;
    const dir = dirname(path);
    removeStaleTemps(dir, basename(path));
    if (this.currentVersion() !== held.version) return { ok: false, conflict: true };
    let tmp: string | null = null;
    try {
      tmp = writeTemp(path, text, Number(held.stat.mode) & 0o7777, { uid: Number(held.stat.uid), gid: Number(held.stat.gid) });
      // The reference module's optimistic check, right before the rename: if another writer (the
      // reference module takes no lock) replaced the file since we read it, do not overwrite it.
      if (this.currentVersion() !== held.version) {
        unlinkSync(tmp);
        return { ok: false, conflict: true };
      }
      renameSync(tmp, path);
      fsyncDir(dir);
      return { ok: true };
    } catch (err) {
      if (tmp) removeQuietly(tmp);
      throw new StateFileError(`could not update ${path} (${errnoOf(err)}); the file was left as it was: check free space and that ${dir} is writable by the file's owner`);
    }
  }
}


/**
 * Create (or with `replace`, replace) a state file atomically, mode 0400: never follows or replaces
 * a symlink, never leaves a partial file; without `replace` an existing file is never overwritten,
 * even one created by someone else a moment ago (link(2) fails instead).
 */
export function writeNewStateFile(path: string, text: string, options: { readonly replace: boolean }): void {
  const dir = dirname(path);
  let existing: ReturnType<typeof lstatSync> | null = null;
  try {
    existing = lstatSync(path);
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") throw new StateFileError(`cannot check ${path} (${errnoOf(err)})`);
  }
  if (existing?.isSymbolicLink()) throw new StateFileError(`${path} is a symbolic link; otpgate never follows or replaces symlinks: remove it first`);
  if (existing && !existing.isFile()) throw new StateFileError(`${path} exists and is not a regular file; remove it first`);
  if (existing && !options.replace) throw new StateFileError(`${path} already exists; pass -f/--force to replace it (the old secret and emergency codes stop working)`);
  removeStaleTemps(dir, basename(path));
  let tmp: string | null = null;
  try {
    tmp = writeTemp(path, text, 0o400);
    if (options.replace) renameSync(tmp, path);
    else {
      linkSync(tmp, path);
      unlinkSync(tmp);
    }
    tmp = null;
    fsyncDir(dir);
  } catch (err) {
    if (tmp) removeQuietly(tmp);
    if (errnoOf(err) === "EEXIST") throw new StateFileError(`${path} was created by someone else just now; nothing was written`);
    throw new StateFileError(`could not write ${path} (${errnoOf(err)}); nothing was written: check that ${dir} exists and is writable by the user`);
  }
}
