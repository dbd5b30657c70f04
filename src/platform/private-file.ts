// Private files, read safely: the one reader of every file otpgate must not be tricked into
// reading through a symlink or from the wrong owner (users' state files, the gateway's keys,
// sessions and passwords, invitations, the RADIUS secret). Opened with O_NOFOLLOW (a symlink is
// refused, never followed), O_NONBLOCK (a FIFO cannot hang the reader) and O_NOCTTY; every check is
// made on the fstat of that same descriptor (no stat-then-open race): a regular file, its owner,
// its permission bits, its size; then exactly that many bytes are read (a file that grows or
// shrinks meanwhile is refused, never half-read). Also: the gateway's atomic writers.

import { closeSync, constants, fstatSync, linkSync, openSync, readSync, renameSync, unlinkSync, type BigIntStats } from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../core/errors.js";
import { fsyncDir, lockedTempPath, removeQuietly, writeTempAt } from "./atomic-file.js";

export interface PrivateFile {
  readonly bytes: Buffer;
  /** dev:ino:size:mtime:ctime of what was read (a writer checks it again under the lock). */
  readonly version: string;
  readonly mtimeMs: number;
  /** The fstat of the descriptor the bytes came from. */
  readonly stat: BigIntStats;
}

/** What can be wrong with a private file. */
export type PrivateFileProblem = "symlink" | "denied" | "unopenable" | "directory" | "not-regular" | "mode" | "owner" | "empty" | "too-large" | "changed";

export interface PrivateFileFacts {
  readonly path: string;
  readonly what: string;
  /** errno code (symlink, denied, unopenable). */
  readonly code?: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly size?: bigint;
}

export interface PrivateFileRules {
  /** The file's role, for messages ("the gateway's keys"). */
  readonly what: string;
  /** Largest size accepted, in bytes. */
  readonly maxBytes: number;
  /** Smallest size accepted (default 0). */
  readonly minBytes?: number;
  /** The uid that must own the file (default: the effective uid); null: any owner. */
  readonly ownerUid?: number | null;
  /** The owner's name for messages (default "uid N"). */
  readonly ownerName?: string;
  /** Permission bits allowed (default 0600); any other bit of 03777 set is refused. */
  readonly allowedMode?: number;
  /** Never follow a symlink: the only value (spelled out at call sites for readers). */
  readonly follow?: false;
  /** A message of the caller's own for a problem (undefined: the default message). */
  readonly explain?: (problem: PrivateFileProblem, facts: PrivateFileFacts) => string | undefined;
  /** The error class thrown (default ConfigError); it gets the message. */
  readonly error?: new (message: string) => Error;
}

/** Thrown (or wrapped in rules.error) for every refusal; `problem` says which check failed. */
export class PrivateFileError extends ConfigError {
  constructor(
    readonly problem: PrivateFileProblem,
    message: string,
  ) {
    super(message);
  }
}

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException)?.code ?? "unknown error";
const octal = (mode: number) => "0" + (mode & 0o7777).toString(8).padStart(3, "0");

function defaultMessage(problem: PrivateFileProblem, f: PrivateFileFacts, rules: PrivateFileRules, owner: number | null): string {
  const { path, what } = f;
  const ownerText = rules.ownerName ?? `uid ${owner}`;
  const allowed = rules.allowedMode ?? 0o600;
  switch (problem) {
    case "symlink":
      return `${path} (${what}) is a symbolic link; otpgate never follows symlinks here: replace it with the file itself, owned by ${ownerText}, mode ${octal(allowed)}`;
    case "denied":
      return `cannot read ${path} (${what}): permission denied; run this as ${ownerText} or as root`;
    case "unopenable":
      return `cannot open ${path} (${what}): ${f.code}; check the path`;
    case "directory":
      return `${path} (${what}) is a directory; it must be a regular file: remove it or point otpgate at the file`;
    case "not-regular":
      return `${path} (${what}) is not a regular file; remove it`;
    case "mode":
      return `${path} (${what}) has mode ${octal(f.mode ?? 0)}; it must be readable by its owner only${allowed === 0o600 ? "" : ` (at most ${octal(allowed)})`}: chmod ${allowed.toString(8)} ${path}`;
    case "owner":
      return `${path} (${what}) belongs to uid ${f.uid}, not to ${ownerText}: chown ${owner} ${path}`;
    case "empty":
      return `${path} (${what}) is empty; restore it from a backup`;
    case "too-large":
      return `${path} (${what}) is ${f.size} bytes, larger than ${rules.maxBytes}; it is not a file otpgate wrote: restore it from a backup`;
    case "changed":
      return `${path} (${what}) changed size while it was read; try again`;
  }
}

/**
 * The file's bytes, or null when it does not exist (ENOENT, or ENOTDIR: a path component is a
 * file). Refuses, with a message that says what to do, a symlink, anything but a regular file, a
 * wrong owner, permission bits beyond `allowedMode`, a size outside [minBytes, maxBytes], and a
 * file that changes size while it is read. The legacy form (path, what, maxBytes) keeps the
 * defaults: owned by the effective uid, mode 0600 at most.
 */
export function readPrivateFile(path: string, rules: PrivateFileRules): PrivateFile | null;
export function readPrivateFile(path: string, what: string, maxBytes: number): PrivateFile | null;
export function readPrivateFile(path: string, rulesOrWhat: PrivateFileRules | string, maxBytes?: number): PrivateFile | null {
  const rules: PrivateFileRules = typeof rulesOrWhat === "string" ? { what: rulesOrWhat, maxBytes: maxBytes ?? 0 } : rulesOrWhat;
  const owner = rules.ownerUid === undefined ? (process.geteuid?.() ?? null) : rules.ownerUid;
  const Failure = rules.error;
  const fail = (problem: PrivateFileProblem, facts: Omit<PrivateFileFacts, "path" | "what"> = {}): Error => {
    const all: PrivateFileFacts = { path, what: rules.what, ...facts };
    const message = rules.explain?.(problem, all) ?? defaultMessage(problem, all, rules, owner);
    return Failure ? new Failure(message) : new PrivateFileError(problem, message);
  };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    if (code === "ELOOP") throw fail("symlink", { code });
    if (code === "EACCES" || code === "EPERM") throw fail("denied", { code });
    throw fail("unopenable", { code });
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    const facts = { mode: Number(st.mode) & 0o7777, uid: Number(st.uid), size: st.size };
    if (st.isDirectory()) throw fail("directory", facts);
    if (!st.isFile()) throw fail("not-regular", facts);
    if ((facts.mode & 0o3777 & ~(rules.allowedMode ?? 0o600)) !== 0) throw fail("mode", facts);
    if (owner !== null && facts.uid !== owner) throw fail("owner", facts);
    if (st.size < BigInt(rules.minBytes ?? 0)) throw fail("empty", facts);
    if (st.size > BigInt(rules.maxBytes)) throw fail("too-large", facts);
    const size = Number(st.size);
    // One byte more than the size: a file that grew since the fstat is noticed, not cut short.
    const buf = Buffer.alloc(size + 1);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== size) {
      buf.fill(0);
      throw fail("changed", facts);
    }
    return {
      bytes: buf.subarray(0, size),
      version: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`,
      mtimeMs: Number(st.mtimeMs),
      stat: st,
    };
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
    throw new ConfigError(`could not write ${path} (${what}): ${errnoOf(err)}; nothing was changed: check that ${dirname(path)} exists and is writable by root`);
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
    if (errnoOf(err) === "EEXIST") return false;
    throw new ConfigError(`could not create ${path} (${what}): ${errnoOf(err)}; check that ${dirname(path)} exists and is writable by root`);
  }
}
