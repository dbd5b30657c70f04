// Persisted session decisions of otpgate gateway (sessions_file, root only, next to the keys):
// revoked session ids with the time they would have expired anyway (pruned after it), and per user
// a "valid after" time (a session created before it is invalid: log out everywhere, new secret).
// Written atomically under a lock whose name only root can compute (the keyring's lock secret); the
// running gateway and the CLI both write it, and the gateway re-reads it when it changes.

import { ConfigError } from "../core/errors.js";
import { userNameProblem } from "../core/user-name.js";
import { acquireLock, type HeldLock } from "../platform/lock.js";
import { privateLockName } from "../platform/keyring.js";
import { createPrivateFile, readPrivateFile, writePrivateFile } from "../platform/private-file.js";

export interface SessionsState {
  /** sid -> Unix ms after which the session is expired anyway (the entry is dropped then). */
  readonly revoked: ReadonlyMap<string, number>;
  /** user -> Unix ms: sessions created before it are invalid. */
  readonly validAfter: ReadonlyMap<string, number>;
}

const WHAT = "the gateway's revoked sessions";
export const MAX_SESSIONS_FILE = 8 * 1024 * 1024;
/** Most revocations kept; beyond it the ones closest to expiry are dropped (logged by the caller). */
export const MAX_REVOKED = 100_000;
const SID = /^[A-Za-z0-9_-]{16,64}$/;

export const emptySessionsState = (): SessionsState => ({ revoked: new Map(), validAfter: new Map() });

export function parseSessionsFile(text: string, path: string): SessionsState {
  const bad = (why: string) =>
    new ConfigError(
      `${path} is not a sessions file otpgate wrote (${why}); fix or delete it and put a backup copy in its place (without it logged-out sessions would come back, so the gateway refuses to start; removing keys_file too ends every session instead)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad("not JSON");
  }
  if (!raw || typeof raw !== "object" || (raw as { v?: unknown }).v !== 1) throw bad("no version 1");
  const { revoked, validAfter } = raw as { revoked?: unknown; validAfter?: unknown };
  const entries = (value: unknown, field: string, keyOk: (k: string) => boolean): [string, number][] => {
    if (!value || typeof value !== "object" || Array.isArray(value)) throw bad(`${field} is not a mapping`);
    return Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      if (!keyOk(k) || typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw bad(`${field} has a bad entry`);
      return [k, v];
    });
  };
  return { revoked: new Map(entries(revoked, "revoked", (k) => SID.test(k))), validAfter: new Map(entries(validAfter, "validAfter", (k) => userNameProblem(k) === null)) };
}

/** ASCII only (non-ASCII user names escaped as \u0000 forms): the private-file writer writes bytes, not UTF-8. */
export function serializeSessionsFile(state: SessionsState): string {
  const json = JSON.stringify({ v: 1, revoked: Object.fromEntries(state.revoked), validAfter: Object.fromEntries(state.validAfter) });
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) + "\n";
}

/**
 * Both states at once: every revocation and the later "valid after" of each user. Decisions only
 * ever grow (until they expire), so a file that lost some (deleted, replaced by an older copy)
 * never takes them back from a process that knew them.
 */
export function mergeSessionsStates(a: SessionsState, b: SessionsState): SessionsState {
  const revoked = new Map(a.revoked);
  for (const [sid, until] of b.revoked) revoked.set(sid, Math.max(until, revoked.get(sid) ?? 0));
  const validAfter = new Map(a.validAfter);
  for (const [user, at] of b.validAfter) validAfter.set(user, Math.max(at, validAfter.get(user) ?? 0));
  return { revoked, validAfter };
}

/** Expired revocations dropped; at most MAX_REVOKED kept (the latest-expiring ones). */
export function pruneSessionsState(state: SessionsState, now: number): SessionsState {
  let revoked = [...state.revoked].filter(([, until]) => until > now);
  if (revoked.length > MAX_REVOKED) revoked = revoked.sort((a, b) => b[1] - a[1]).slice(0, MAX_REVOKED);
  return { revoked: new Map(revoked), validAfter: new Map(state.validAfter) };
}

export interface SessionsFileRead {
  readonly state: SessionsState;
  /** null when the file does not exist. */
  readonly version: string | null;
}

/** What the session service needs of the store (the file, or memory for in-process tests). */
export interface SessionsStore {
  read(): SessionsFileRead;
  revokeUser(user: string, at: number): Promise<SessionsState>;
  revokeSession(sid: string, until: number, now: number): Promise<SessionsState>;
}

/** In memory: the gateway app in-process (tests), where nothing must survive. */
export class MemorySessionsStore implements SessionsStore {
  private state: SessionsState = emptySessionsState();
  read(): SessionsFileRead {
    return { state: this.state, version: null };
  }
  async revokeUser(user: string, at: number): Promise<SessionsState> {
    const validAfter = new Map(this.state.validAfter).set(user, Math.max(at, this.state.validAfter.get(user) ?? 0));
    return (this.state = pruneSessionsState({ revoked: this.state.revoked, validAfter }, at));
  }
  async revokeSession(sid: string, until: number, now: number): Promise<SessionsState> {
    return (this.state = pruneSessionsState({ revoked: new Map(this.state.revoked).set(sid, until), validAfter: this.state.validAfter }, now));
  }
}

export class GatewaySessionsFile implements SessionsStore {
  /** Everything this process has read from or written to the file (merged): what a lost file is rebuilt from. */
  private known: SessionsState | null = null;

  /**
   * `recordedBy`: the keys file, when it records that this sessions file was created (then a
   * missing file was deleted, not "nothing revoked yet").
   */
  constructor(
    readonly path: string,
    private readonly lockSecret: Buffer,
    private readonly recordedBy: string | null = null,
  ) {}

  /** The current state; empty when the file does not exist yet (nothing revoked yet). */
  read(): SessionsFileRead {
    const file = readPrivateFile(this.path, WHAT, MAX_SESSIONS_FILE);
    if (!file) {
      if (this.known || this.recordedBy) throw new SessionsFileLostError(this.lostMessage("is missing"));
      return { state: emptySessionsState(), version: null };
    }
    if (file.bytes.length === 0) throw new SessionsFileLostError(this.lostMessage("is empty"));
    const state = parseSessionsFile(file.bytes.toString("utf8"), this.path);
    this.known = this.known ? mergeSessionsStates(this.known, state) : state;
    return { state, version: file.version };
  }

  private lostMessage(what: string): string {
    const since = this.known
      ? `, but it was read before${this.known.revoked.size + this.known.validAfter.size ? ` (keeping the ${this.known.revoked.size} revoked session(s) and ${this.known.validAfter.size} "log out everywhere" time(s) known; the next logout writes them back)` : ""}`
      : `, but ${this.recordedBy} records that it was created`;
    return `${this.path} ${what}${since}: it holds ${WHAT} and was deleted or emptied (logged-out sessions would come back); restore it from a backup, or end every session instead: remove ${this.recordedBy ?? "keys_file"} too (a new key is made at the next start)`;
  }

  /** A new, empty sessions file when there is none (never overwriting); false when one exists. */
  create(): boolean {
    return createPrivateFile(this.path, serializeSessionsFile(emptySessionsState()), WHAT);
  }

  /** Read, change and write back under the file's lock (created when missing); returns what was written. */
  async update(change: (state: { revoked: Map<string, number>; validAfter: Map<string, number> }) => void, now: number): Promise<SessionsState> {
    let lock: HeldLock;
    try {
      lock = await acquireLock(privateLockName(this.lockSecret, this.path), { timeoutMs: 10_000 });
    } catch {
      throw new ConfigError(`${this.path} is locked by another otpgate process for too long; nothing was changed, try again`);
    }
    try {
      let current: SessionsState;
      try {
        current = this.read().state;
      } catch (err) {
        // Lost after this process read it: rebuilt from what this process knows (logged by the caller's reload).
        if (!(err instanceof SessionsFileLostError) || !this.known) throw err;
        current = this.known;
      }
      if (this.known) current = mergeSessionsStates(this.known, current);
      const next = { revoked: new Map(current.revoked), validAfter: new Map(current.validAfter) };
      change(next);
      const pruned = pruneSessionsState(next, now);
      writePrivateFile(this.path, serializeSessionsFile(pruned), WHAT);
      this.known = pruned;
      return pruned;
    } finally {
      await lock.release();
    }
  }

  /** Log out everywhere: sessions of `user` created before `at` end. */
  revokeUser(user: string, at: number): Promise<SessionsState> {
    return this.update((s) => s.validAfter.set(user, Math.max(at, s.validAfter.get(user) ?? 0)), at);
  }

  revokeSession(sid: string, until: number, now: number): Promise<SessionsState> {
    return this.update((s) => s.revoked.set(sid, Math.max(until, s.revoked.get(sid) ?? 0)), now);
  }
}

/** The sessions file vanished or was emptied after it existed: never read as "nothing revoked". */
export class SessionsFileLostError extends ConfigError {}
