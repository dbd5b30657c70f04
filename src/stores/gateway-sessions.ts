// Persisted session decisions of otpgate gateway (sessions_file, root only, next to the keys):
// revoked session ids with the time they would have expired anyway (pruned after it), and per user
// a "valid after" time (a session created before it is invalid: log out everywhere, new secret).
// Written atomically under a lock whose name only root can compute (the keyring's lock secret); the
// running gateway and the CLI both write it, and the gateway re-reads it when it changes.

import { ConfigError } from "../core/errors.js";
import { USER_NAME } from "../core/web/password-entries.js";
import { acquireLock, type HeldLock } from "../platform/lock.js";
import { privateLockName } from "../platform/keyring.js";
import { readPrivateFile, writePrivateFile } from "../platform/private-file.js";

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
  const bad = (why: string) => new ConfigError(`${path} is not a sessions file otpgate wrote (${why}); fix or delete it (deleting it brings back sessions that were logged out)`);
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
  return { revoked: new Map(entries(revoked, "revoked", (k) => SID.test(k))), validAfter: new Map(entries(validAfter, "validAfter", (k) => USER_NAME.test(k))) };
}

export function serializeSessionsFile(state: SessionsState): string {
  return JSON.stringify({ v: 1, revoked: Object.fromEntries(state.revoked), validAfter: Object.fromEntries(state.validAfter) }) + "\n";
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
  constructor(
    readonly path: string,
    private readonly lockSecret: Buffer,
  ) {}

  /** The current state; empty when the file does not exist (nothing revoked yet). */
  read(): SessionsFileRead {
    const file = readPrivateFile(this.path, WHAT, MAX_SESSIONS_FILE);
    if (!file) return { state: emptySessionsState(), version: null };
    return { state: parseSessionsFile(file.bytes.toString("utf8"), this.path), version: file.version };
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
      const current = this.read().state;
      const next = { revoked: new Map(current.revoked), validAfter: new Map(current.validAfter) };
      change(next);
      const pruned = pruneSessionsState(next, now);
      writePrivateFile(this.path, serializeSessionsFile(pruned), WHAT);
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
