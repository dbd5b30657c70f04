// The google-authenticator state file on disk: refuses symlinks, non-regular files, wrong owners,
// loose permissions, oversized or binary content; updates under an exclusive lock with a
// compare-and-swap check, through a temp file in the same directory (fsync, rename, fsync dir),
// keeping the file's owner and mode.
//
// Privileges belong here: with `actAs`, a store used by root does every file operation (open, read,
// stat, temp write, rename, fsync) as the account's owner, switching back to root right after each
// synchronous section and never across an await (the lock is an abstract socket: no file). Without
// `actAs`, a root process refuses state paths whose directories the owner could swap for symlinks.

import { closeSync, constants, fstatSync, linkSync, lstatSync, openSync, readSync, renameSync, statSync, unlinkSync, type BigIntStats } from "node:fs";
import { basename, dirname, sep } from "node:path";
import { ENROLL_HINT, StateFileError } from "../core/errors.js";
import { secretLine } from "../formats/ga-document.js";
import { fsyncDir, lockedTempPath, removeQuietly, removeStaleTemps, writeTemp, writeTempAt } from "../platform/atomic-file.js";
import { acquireLock, lockName } from "../platform/lock.js";
import { asUser, canActAs, effectiveUid, type Identity } from "../platform/privileges.js";
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
  /**
   * Do every file operation with this user's ids (normally the owner's). A root process switches
   * for each synchronous section; a process running as this user needs no switch; any other
   * process is refused.
   */
  readonly actAs?: Identity | undefined;
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
    return this.peekWithMode()?.text ?? null;
  }

  /** peek, with the permission bits from the fstat of the descriptor that was read (no second stat). */
  peekWithMode(): { readonly text: string; readonly mode: number } | null {
    const snapshot = this.asOwner(() => this.read());
    return snapshot ? { text: snapshot.text, mode: Number(snapshot.stat.mode) & 0o7777 } : null;
  }

  /** Run a synchronous file section with the right privileges (see the file comment). */
  private asOwner<T>(section: () => T): T {
    const { actAs, owner, path } = this.options;
    if (actAs) {
      if (!canActAs(actAs.uid)) {
        throw new StateFileError(`otpgate runs as uid ${effectiveUid()} and cannot act as ${owner.name} (uid ${actAs.uid}) to use ${path}: run it as root or as ${owner.name}`);
      }
      return asUser(actAs, section);
    }
    if (effectiveUid() === 0 && owner.uid !== 0) this.refuseSwappableDirs();
    return section();
  }

  /**
   * Root working as itself on a user's file: no directory on the path may be one that someone
   * other than root can replace: its parent must be root's and not group/world-writable, or sticky
   * (like /tmp) with the directory itself root's. The directory holding the file may be the user's
   * (the file is opened with O_NOFOLLOW and the temp file with O_EXCL). Otherwise the user could
   * swap a directory for a symlink between two steps and make root read or write elsewhere
   * (pam_oath's CVE-2024-47191).
   */
  private refuseSwappableDirs(): void {
    const { path, owner } = this.options;
    const parts = dirname(path).split(sep).filter(Boolean);
    let container: string = sep;
    for (const part of parts) {
      const entry = container === sep ? `${sep}${part}` : `${container}${sep}${part}`;
      let dir;
      let st;
      try {
        dir = statSync(container);
        st = lstatSync(entry);
      } catch (err) {
        // A missing directory: nothing to read there (not enrolled), if only root can create it.
        const missing = errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR";
        if (missing && dir && dir.uid === 0 && (dir.mode & 0o022) === 0) return;
        if (!missing) throw new StateFileError(`cannot check ${entry} (${errnoOf(err)}) on the way to ${path}`);
        if (!dir) return;
      }
      const othersWrite = (dir.mode & 0o022) !== 0;
      const sticky = (dir.mode & 0o1000) !== 0;
      if (dir.uid !== 0 || (othersWrite && !(sticky && st?.uid === 0))) {
        throw new StateFileError(
          `${path}: ${container} can be changed by ${dir.uid !== 0 ? `uid ${dir.uid}` : "others"}, so ${owner.name} could swap ${entry} for a symlink while root uses the state file; use a state path whose parent directories only root can change (e.g. ~/.google_authenticator), or a store that acts as ${owner.name}`,
        );
      }
      container = entry;
    }
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
      const found = this.asOwner(() => {
        const snapshot = this.read();
        return snapshot ? { first: snapshot, dirStat: statSync(dir, { bigint: true }) } : null;
      });
      if (!found) return null;
      const { first, dirStat } = found;
      const secret = secretLine(first.text);
      const lock = await acquireLock(lockName(secret, [String(dirStat.dev), String(dirStat.ino), basename(path)]), {
        timeoutMs: this.options.lockTimeoutMs ?? 5000,
      });
      let snapshot: Snapshot | null;
      try {
        // Usually nothing changed while we waited for the lock: then the first read is current.
        snapshot = this.asOwner(() => (this.currentVersion() === first.version ? first : this.read()));
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
        commit: async (text) => this.asOwner(() => this.commit(held, text)),
        release: () => lock.release(),
      };
    }
    throw new StateFileError(`${path} keeps being replaced while otpgate reads it; try again`);
  }

  /**
   * Atomic replace; call only while holding the lock. Constant work whatever the directory holds:
   * the temp file has the lock holder's fixed name (a killed holder's leftover is removed by that
   * name); the directory is never listed (otpgate radius would stall for everyone on a user's
   * home with 300,000 files).
   */
  private commit(held: Snapshot, text: string): CommitResult {
    const { path } = this.options;
    const dir = dirname(path);
    if (this.currentVersion() !== held.version) return { ok: false, conflict: true };
    let tmp: string | null = null;
    try {
      removeQuietly(lockedTempPath(path));
      tmp = writeTempAt(lockedTempPath(path), text, Number(held.stat.mode) & 0o7777, { uid: Number(held.stat.uid), gid: Number(held.stat.gid) });
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
