// The google-authenticator state file on disk: refuses symlinks, non-regular files, wrong owners,
// loose permissions, oversized or binary content; updates under an exclusive lock with a
// compare-and-swap check, through a temp file in the same directory (fsync, rename, fsync dir),
// keeping the file's owner and mode.
//
// Privileges belong here: a store used by a root process does every file operation (open, read,
// stat, temp write, rename, fsync) as the account's owner (uid, gid and groups), switching back to
// root right after each synchronous section and never across an await (the lock is an abstract
// socket, platform/account-lock: no file). So no daemon ever touches a path the user controls as
// root: a directory the user swaps for a symlink leads only where the user could go anyway. A process that is neither
// root nor the owner is refused before it touches anything.

import { linkSync, lstatSync, renameSync, statSync, unlinkSync, type BigIntStats } from "node:fs";
import { basename, dirname } from "node:path";
import { ENROLL_HINT, StateFileError } from "../core/errors.js";
import { logFields } from "../core/log-fields.js";
import { secretLine } from "../formats/ga-document.js";
import { fsyncDir, lockedTempPath, newFileTempPath, removeQuietly, removeStaleNewFileTemp, writeTempAt } from "../platform/atomic-file.js";
import { acquireAccountLock } from "../platform/account-lock.js";
import { groupsOf } from "../platform/groups.js";
import { readPrivateFile, type PrivateFileFacts, type PrivateFileProblem } from "../platform/private-file.js";
import { asUser, canActAs, effectiveUid, type Identity } from "../platform/privileges.js";
import { lookupUserById } from "../platform/users.js";
import type { AccountStore, CommitResult, LockedAccount } from "../ports/index.js";

export const MAX_STATE_FILE_BYTES = 64 * 1024;

export interface FileStoreOptions {
  readonly path: string;
  /**
   * The account whose file it is: a root process acts as this user (uid, gid, groups) for every
   * file operation. gid and groups are looked up (passwd, /etc/group) when not given.
   */
  readonly owner: StoreOwner;
  /** Reference `no_strict_owner` when false. */
  readonly strictOwner: boolean;
  /** Reference `allowed_perm` (default 0600): permission bits beyond these are refused. */
  readonly allowedPerm: number;
  readonly lockTimeoutMs?: number;
  /**
   * Where to report that another local user squats this file's lock names (platform/account-lock):
   * one line per event, no secret in it. Default: standard error (the journal for the resident
   * processes; pam_exec discards it unless told otherwise).
   */
  readonly onLockNotice?: ((line: string) => void) | undefined;
  /**
   * Act with these ids instead of the owner's (the same user with known groups, from callers that
   * looked the account up already). Its uid must be the owner's.
   */
  readonly actAs?: Identity | undefined;
}

export interface StoreOwner {
  readonly uid: number;
  readonly name: string;
  /** Primary group; looked up from the uid when missing. */
  readonly gid?: number | undefined;
  /** Supplementary groups while acting as the owner; looked up when missing. */
  readonly groups?: readonly number[] | undefined;
}

interface Snapshot {
  readonly text: string;
  readonly version: string;
  readonly stat: BigIntStats;
}

const octal = (mode: number) => "0" + (mode & 0o7777).toString(8).padStart(3, "0");

/** Must match readPrivateFile's version string (compare-and-swap on it). */
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

  private identity: Identity | undefined;

  /** The ids a root process uses for the owner's file; looked up once per store. */
  private ownerIdentity(): Identity {
    if (this.identity) return this.identity;
    const { actAs, owner, path } = this.options;
    if (actAs && actAs.uid !== owner.uid)
      throw new StateFileError(`${path}: the store was asked to act as uid ${actAs.uid}, not as its owner ${owner.name} (uid ${owner.uid}); this is a bug in the caller`);
    let gid = actAs?.gid ?? owner.gid;
    if (gid === undefined) {
      const account = lookupUserById(owner.uid);
      if (!account) throw new StateFileError(`no account has uid ${owner.uid} (${owner.name}), so otpgate cannot act as the owner of ${path}; check the user with getent passwd ${owner.name}`);
      gid = account.gid;
    }
    const groups = actAs?.groups ?? owner.groups ?? groupsOf(owner.name, gid);
    return (this.identity = { uid: owner.uid, gid, groups });
  }

  /**
   * Run a synchronous file section as the owner: a root process switches to the owner's ids for
   * the section and back (asUser), a process running as the owner runs it as it is, any other
   * process is refused before it touches the path.
   */
  private asOwner<T>(section: () => T): T {
    const { owner, path } = this.options;
    const euid = effectiveUid();
    if (euid === null || euid === owner.uid) return section();
    if (!canActAs(owner.uid)) {
      throw new StateFileError(`otpgate runs as uid ${euid} and cannot act as ${owner.name} (uid ${owner.uid}) to use ${path}: run it as root or as ${owner.name}`);
    }
    return asUser(this.ownerIdentity(), section);
  }

  private read(): Snapshot | null {
    const { path, owner, strictOwner, allowedPerm } = this.options;
    const file = readPrivateFile(path, {
      what: "state file",
      maxBytes: MAX_STATE_FILE_BYTES,
      minBytes: 1,
      ownerUid: strictOwner ? owner.uid : null,
      ownerName: owner.name,
      allowedMode: allowedPerm,
      follow: false,
      explain: (problem, facts) => this.explain(problem, facts),
      error: StateFileError,
    });
    if (!file) return null;
    const { bytes } = file;
    try {
      if (bytes.includes(0)) {
        throw new StateFileError(`${path} contains NUL bytes (binary data), so it is not a google-authenticator state file; restore it from a backup or ${ENROLL_HINT}`);
      }
      return { text: bytes.toString("latin1"), version: file.version, stat: file.stat };
    } finally {
      bytes.fill(0);
    }
  }

  /** The state file's own messages (the reference's wording where it has one). */
  private explain(problem: PrivateFileProblem, facts: PrivateFileFacts): string | undefined {
    const { path, owner, allowedPerm } = this.options;
    switch (problem) {
      case "symlink":
        return `${path} is a symbolic link; otpgate never follows or replaces symlinks: replace it with the file itself (cp --remove-destination "$(readlink -f ${path})" ${path})`;
      case "denied":
        return `cannot read ${path}: permission denied; run as the file's owner or as root (with --user NAME)`;
      case "unopenable":
        return `cannot open ${path}: ${facts.code}`;
      case "directory":
        return `${path} is a directory; the state file must be a regular file: remove it and ${ENROLL_HINT}`;
      case "not-regular":
        return `${path} is not a regular file; the state file must be a regular file: remove it and ${ENROLL_HINT}`;
      case "mode":
        return `${path} has permissions ${octal(facts.mode ?? 0)}, more permissive than ${octal(allowedPerm)}: anyone who can read it can copy the secret; run chmod 600 ${path}`;
      case "owner":
        return `${path} must be owned by ${owner.name} (uid ${owner.uid}), not uid ${facts.uid}: run chown ${owner.name} ${path}, or pass --user with the right account`;
      case "empty":
        return `${path} is empty; ${ENROLL_HINT}`;
      case "too-large":
        return `${path} is ${facts.size} bytes; a state file is at most ${MAX_STATE_FILE_BYTES} bytes: restore it from a backup or ${ENROLL_HINT}`;
      case "changed":
        return `${path} changed size while it was read; try again`;
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
      const notice = this.options.onLockNotice ?? ((line: string) => process.stderr.write(`otpgate: ${line}\n`));
      const lock = await acquireAccountLock(secret, [String(dirStat.dev), String(dirStat.ino), basename(path)], {
        timeoutMs: this.options.lockTimeoutMs ?? 5000,
        onSquatted: (generation) =>
          notice(logFields({ event: "lock-squatted", file: path, generation, problem: "another local user holds this file's lock name without proving it is otpgate; trying the next name" })),
        onUnlocked: () =>
          notice(
            logFields({
              event: "lock-unavailable",
              file: path,
              problem: "every lock name of this file is squatted by another local user; proceeding under the compare-and-swap check alone: find the squatter with ss -xlp | grep otpgate",
            }),
          ),
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

/** The temp file of writeNewStateFile (one fixed name: see platform/atomic-file.ts). */
export const newStateTempPath = newFileTempPath;

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
  // rt1 F3: a fixed temp name (O_EXCL), never a directory listing (this runs in the server too).
  removeStaleNewFileTemp(path, Date.now());
  try {
    writeTempAt(newStateTempPath(path), text, 0o400);
  } catch (err) {
    if (errnoOf(err) === "EEXIST")
      throw new StateFileError(
        `another enrollment of this account is writing ${path} right now (${newStateTempPath(path)} exists); try again in a minute, or remove that file if no enrollment is running`,
      );
    throw new StateFileError(`could not write ${path} (${errnoOf(err)}); nothing was written: check that ${dir} exists and is writable by the user`);
  }
  let tmp: string | null = newStateTempPath(path);
  try {
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
