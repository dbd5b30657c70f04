// Gateway sessions that stay ended. A session is a sealed cookie (keyring purpose "session") with a
// new random id at every login, the user, its times and a fingerprint of the user's secret. It is
// valid while: the seal opens with a key still in the keyring, its id is not revoked, it was created
// after the user's "valid after" time, the idle and absolute timeouts have not passed, and the
// user's secret is still the one it was issued for (checked again at most every session.recheck,
// in the background, against the user's state file). Revocations and "valid after" times are
// persisted in sessions_file, so a restart brings nothing back; changes other processes make there
// (otpgate gateway sessions --revoke, otpgate invite --replace) and to keys_file (rotation) are
// noticed within about a second by a timer, never by a system call per request.
// Listeners (onEnded) learn of ended sessions, so open WebSocket tunnels can be closed.
// With `store:` (several instances, issue 11) revocations live in the shared state instead of
// sessions_file (shared-state.ts): polled every second, and while it cannot be read every session
// is refused and none is issued (fail closed).

import { decideSession, isBoundSession, newSession, type BoundSession, type SessionData } from "../../core/web/index.js";
import { watchFile, type FileWatch } from "../../platform/file-watch.js";
import { Keyring, loadOrCreateKeyring, readKeyFile, recordSessionsFile } from "../../platform/keyring.js";
import type { Clock, Random } from "../../ports/index.js";
import { mergeSessionsStates, type SessionsState, type SessionsStore } from "../../stores/gateway-sessions.js";
import { DecisionServiceUnavailable } from "../../ports/decision-service.js";
import { LONGEST_SESSION_MS } from "../../ports/gateway-state.js";
import type { CsrfTokens } from "./page-kit.js";
import type { SharedSessions } from "./shared-state.js";
import type { GatewayConfig } from "./gateway-config.js";
import type { GatewayLog } from "./gateway-types.js";

export type { SessionData } from "../../core/web/index.js";
/** The name the app uses (helper A's interim interface). */
export type Sessions = SessionService;

export interface EndedFilter {
  readonly sid?: string;
  readonly user?: string;
}

export interface IssuedSession {
  readonly session: SessionData;
  /** The cookie's value (the Set-Cookie line is built by the app). */
  readonly cookie: string;
}

export interface SessionService {
  /** The valid session the cookie value carries, with lastSeenAt = now; null otherwise. */
  open(cookieValue: string | undefined, now: number): SessionData | null;
  /**
   * Whether the session the cookie value carries is still valid (a tunnel's re-check): like open(),
   * but the session's activity is refreshed only when `active` (traffic passed); the secret's
   * fingerprint is re-checked in the background when due, as for open().
   */
  stillValid(cookieValue: string, now: number, active: boolean): boolean;
  /** A new session for `user` (new id). `fingerprint`: from fingerprint() or currentFingerprint(), taken at login. */
  issue(user: string, now: number, fingerprint: string): IssuedSession;
  /** The fingerprint of `user`'s secret line; a keyed MAC, never the secret. */
  fingerprint(user: string, secretLine: string): string;
  /** The fingerprint of `user`'s secret as the state file holds it now; null when there is none. */
  currentFingerprint(user: string): Promise<string | null>;
  /** End one session (logout), also after a restart; persisted in the background. */
  revoke(session: SessionData, now: number): void;
  /** End every session of `user` created up to `now` (log out everywhere; a new secret). */
  revokeUser(user: string, now: number): void;
  /** The session was revoked (by id, or by its user's "valid after"): a tunnel of it must close. Timeouts are not considered. */
  ended(session: SessionData): boolean;
  /** Called when sessions end by revocation (not by timeout): close their tunnels. */
  onEnded(listener: (filter: EndedFilter) => void): void;
  /** Called after keys_file changed (a retired key's sessions no longer open): tunnels re-check. */
  onKeysChanged(listener: () => void): void;
  /** When a session must end at the latest (absolute expiry), Unix ms: timers on long-lived tunnels. */
  expiresAt(session: SessionData): number;
  /** The keyring as it is now (rotations are picked up): CSRF tokens and enrollment drafts. */
  keys(): Keyring;
  readonly csrf: CsrfTokens;
  /** Everything persisted so far is on disk; background rechecks have finished. */
  flush(): Promise<void>;
  close(): void;
  /** Sessions remembered for their activity and their last secret check (metrics and tests). */
  readonly tracked: { readonly seen: number; readonly checked: number };
}

export interface SessionServiceOptions {
  readonly config: Pick<GatewayConfig, "keysFile" | "sessionsFile" | "session">;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: GatewayLog;
  /** `user`'s secret line now; null when the state file is gone or unusable; throws when it cannot tell yet (lookup timeout). */
  readonly readSecret: (user: string) => Promise<string | null>;
  /** How often keys_file and sessions_file are checked for changes by other processes (default 1 s). */
  readonly watchMs?: number;
  /**
   * Opens sessions_file (stores/gateway-sessions.ts GatewaySessionsFile): `recordedBy` is keys_file
   * when it records that the sessions file was created, else null (it is created then). Passed by the
   * composition root (gateway-entry.ts openSessionsFile); not needed with `inMemory`.
   */
  readonly openSessionsFile?: SessionsFileOpener;
  /** In-process (tests): this keyring and store instead of keys_file and sessions_file, and no watching. */
  readonly inMemory?: { readonly keyring: Keyring; readonly store: SessionsStore };
  /** Revocations in the shared state of several instances (`store:`) instead of sessions_file (which is then not used). */
  readonly shared?: SharedSessions;
}

/** What the composition root passes to open sessions_file. */
export type SessionsFileOpener = (path: string, lockSecret: Buffer, recordedBy: string | null) => SessionsStore & { create(): boolean };

/** Fingerprints are short (cookie size): 16 bytes of HMAC-SHA256 with the secret-fingerprint subkey. */
const FP_BYTES = 16;
const MAX_OPENED = 10_000;
const MAX_TRACKED = 100_000;

/** Throws ConfigError (at start-up) when keys_file or sessions_file cannot be used. */
export function createSessionService(options: SessionServiceOptions): SessionService {
  const { config, clock, random, log } = options;
  const policy = config.session;
  let keyring = options.inMemory?.keyring ?? loadOrCreateKeyring(config.keysFile, clock.nowMs(), random);
  // The keys file records that the sessions file was created: missing at start, it was deleted
  // (read() refuses: logged-out sessions must not come back). Not recorded yet (a new keys file, or
  // one of an earlier version): an empty sessions file is created and the keys file records it.
  const shared = options.shared ?? null;
  if (!options.inMemory && !options.openSessionsFile && !shared) throw new TypeError("createSessionService: pass openSessionsFile (gateway-entry.ts), shared or inMemory");
  const fileStore = options.inMemory || shared ? null : options.openSessionsFile!(config.sessionsFile, keyring.file.lockSecret, keyring.file.sessionsFileCreated ? config.keysFile : null);
  const store: SessionsStore = options.inMemory?.store ?? shared?.store ?? fileStore!;
  let persisted: SessionsState = store.read().state;
  let writes: Promise<unknown> = Promise.resolve();
  if (fileStore && !keyring.file.sessionsFileCreated) {
    fileStore.create();
    writes = recordSessionsFile(config.keysFile).catch((err: Error) => log({ event: "error", where: "keys-file", action: "record-sessions-file", message: err.message }));
  }
  // Decisions made here and not yet seen in the file (the write is in flight, or failed).
  const localRevoked = new Map<string, number>();
  const localValidAfter = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  const lastChecked = new Map<string, number>();
  const opened = new Map<string, BoundSession>();
  const listeners: ((filter: EndedFilter) => void)[] = [];
  const keyListeners: (() => void)[] = [];
  const checks = new Set<Promise<void>>();

  const emit = (filter: EndedFilter) => {
    for (const l of listeners) {
      try {
        l(filter);
      } catch (err) {
        log({ event: "error", where: "session-ended-listener", message: (err as Error).message });
      }
    }
  };

  const revokedUntil = (sid: string) => localRevoked.get(sid) ?? persisted.revoked.get(sid);
  const validAfterOf = (user: string) => {
    const a = localValidAfter.get(user);
    const b = persisted.validAfter.get(user);
    return a === undefined ? b : b === undefined ? a : Math.max(a, b);
  };

  /**
   * The file's state as now known (re-read after another process changed it, or as our own write
   * left it, which includes what others wrote before): listeners learn of decisions that are not
   * ours, and ours that reached the file are no longer kept apart.
   */
  const adopt = (read: SessionsState) => {
    const before = persisted;
    // Merged with what was known: a file replaced by an older or emptier copy takes nothing back.
    const now = clock.nowMs();
    const merged = mergeSessionsStates(before, read);
    const next: SessionsState = { revoked: new Map([...merged.revoked].filter(([, until]) => until > now)), validAfter: merged.validAfter };
    persisted = next;
    for (const [sid] of next.revoked) if (!before.revoked.has(sid) && !localRevoked.has(sid)) emit({ sid });
    for (const [user, at] of next.validAfter) if ((before.validAfter.get(user) ?? -1) < at && (localValidAfter.get(user) ?? -1) < at) emit({ user });
    for (const [sid] of localRevoked) if (next.revoked.has(sid)) localRevoked.delete(sid);
    for (const [user, at] of localValidAfter) if ((next.validAfter.get(user) ?? -1) >= at) localValidAfter.delete(user);
  };

  const persist = (what: string, write: () => Promise<SessionsState>) => {
    writes = writes
      .then(write)
      .then((written) => {
        // The file as it is now, not as we wrote it: another process may have written after us
        // (and the timer seen it) before this runs; adopting our older state would lose that.
        let latest = written;
        try {
          latest = store.read().state;
        } catch {
          // unreadable right now: what we wrote is the best we know
        }
        adopt(latest);
      })
      .catch((err: Error) => log({ event: "error", where: "sessions-file", action: what, message: err.message }));
  };

  const reloadSessions = () => {
    try {
      adopt(store.read().state);
    } catch (err) {
      log({ event: "error", where: "sessions-file", action: "reload", message: (err as Error).message });
      // keep what we know; our own in-memory decisions stay in force
    }
  };

  const reloadKeys = () => {
    try {
      const file = readKeyFile(config.keysFile);
      if (!file) throw new Error(`${config.keysFile} is gone; keeping the keys in memory (restore the file: sessions end at restart otherwise)`);
      keyring = new Keyring(file, random);
      opened.clear(); // a retired key's sessions must not open from the cache
      log({ event: "keys", kids: keyring.kids.join(" "), sealing: keyring.newest.kid });
      for (const l of keyListeners) l(); // tunnels of sessions sealed with a retired key close now
    } catch (err) {
      log({ event: "error", where: "keys-file", action: "reload", message: (err as Error).message });
    }
  };

  const watchMs = options.watchMs ?? 1000;
  const watches: FileWatch[] = options.inMemory ? [] : [...(fileStore ? [watchFile(config.sessionsFile, watchMs, reloadSessions)] : []), watchFile(config.keysFile, watchMs, reloadKeys)];
  shared?.onChange(reloadSessions);

  /**
   * Until when a revocation of `s` must be kept: its own sealed expiry (whatever this instance's
   * session.absolute is); a cookie sealed before it carried one, as long as any session can live (RT-B F4).
   */
  const revokeUntil = (s: SessionData) => s.exp ?? s.createdAt + LONGEST_SESSION_MS;

  const end = (s: BoundSession, reason: string) => {
    localRevoked.set(s.sid, revokeUntil(s));
    lastSeen.delete(s.sid);
    lastChecked.delete(s.sid);
    log({ event: "session-ended", reason, user: s.user });
    persist("revoke", () => store.revokeSession(s.sid, revokeUntil(s), clock.nowMs()));
    emit({ sid: s.sid });
  };

  const fingerprintWith = (user: string, secretLine: string, kid?: number) => keyring.mac("secret-fingerprint", `${user}\0${secretLine}`, FP_BYTES, kid);

  const recheck = (s: BoundSession) => {
    const check = options
      .readSecret(s.user)
      .then((secret) => {
        if (revokedUntil(s.sid) !== undefined) return;
        if (secret === null) return end(s, "state-file-gone");
        const kid = /^v1\.([0-9]+)\./.exec(s.fp)?.[1];
        const expected = kid === undefined ? null : fingerprintWith(s.user, secret, Number(kid));
        if (expected !== s.fp) end(s, "secret-changed");
      })
      .catch((err: Error) => {
        lastChecked.delete(s.sid); // could not tell: ask again on the next request
        log({ event: "error", where: "session-recheck", user: s.user, message: err.message });
      });
    checks.add(check);
    void check.finally(() => checks.delete(check));
  };

  // lastSeen and lastChecked are kept in time order (an update moves the entry to the end), so
  // pruning stops at the first young entry: O(what it frees). An entry older than idle (lastSeen) or
  // recheck (lastChecked) means what no entry means, so dropping it changes no decision. Pruning
  // once a second at most; the full scan of localRevoked is bounded by that too (RT-B F7: with
  // 100,000 sessions issued within `absolute`, every check scanned both maps and freed nothing).
  const stamp = (m: Map<string, number>, sid: string, now: number) => {
    m.delete(sid);
    m.set(sid, now);
  };
  const dropOlder = (m: Map<string, number>, maxAgeMs: number, now: number) => {
    for (const [sid, t] of m) {
      if (now - t < maxAgeMs) break;
      m.delete(sid);
    }
  };
  let prunedAt = -Infinity;
  const prune = (now: number) => {
    if (now - prunedAt < 1000 && now >= prunedAt) return;
    prunedAt = now;
    dropOlder(lastSeen, policy.idleMs, now);
    dropOlder(lastChecked, policy.recheckMs, now);
    for (const [sid, until] of localRevoked) if (until <= now && persisted.revoked.get(sid) === undefined) localRevoked.delete(sid);
  };

  /** The valid session the cookie carries (lastSeenAt as known, refreshed to `now` when `touch`); null otherwise. */
  const check = (cookieValue: string | undefined, now: number, touch: boolean): SessionData | null => {
    if (!cookieValue) return null;
    // Fail closed: a session whose revocation cannot be checked is not accepted (nor touched).
    if (shared && !shared.available(now)) return null;
    let s = opened.get(cookieValue);
    if (!s) {
      const value = keyring.open("session", cookieValue);
      if (!isBoundSession(value)) return null;
      if (opened.size >= MAX_OPENED) opened.clear();
      opened.set(cookieValue, (s = value));
    }
    const verdict = decideSession({ ...s, lastSeenAt: Math.max(s.lastSeenAt, lastSeen.get(s.sid) ?? 0) }, now, policy, {
      revokedUntil: revokedUntil(s.sid),
      validAfter: validAfterOf(s.user),
    });
    if (!verdict.valid) return null;
    if (lastSeen.size >= MAX_TRACKED || lastChecked.size >= MAX_TRACKED) prune(now);
    if (touch) stamp(lastSeen, s.sid, now);
    const checkedAt = lastChecked.get(s.sid);
    if (checkedAt === undefined || now - checkedAt >= policy.recheckMs) {
      stamp(lastChecked, s.sid, now);
      recheck(s);
    }
    return verdict.session;
  };

  const service: SessionService = {
    open: (cookieValue, now) => check(cookieValue, now, true),
    stillValid: (cookieValue, now, active) => check(cookieValue, now, active) !== null,
    issue(user, now, fingerprint) {
      if (shared && !shared.available(now)) throw new DecisionServiceUnavailable(shared.unavailableMessage());
      const session: SessionData = { ...newSession(Buffer.from(random.bytes(18)).toString("base64url"), user, now), exp: now + policy.absoluteMs };
      const bound: BoundSession = { ...session, fp: fingerprint };
      stamp(lastChecked, session.sid, now); // the fingerprint was taken at login
      if (lastChecked.size >= MAX_TRACKED) prune(now);
      return { session, cookie: keyring.seal("session", bound) };
    },
    fingerprint(user, secretLine) {
      return fingerprintWith(user, secretLine)!;
    },
    async currentFingerprint(user) {
      const secret = await options.readSecret(user);
      return secret === null ? null : fingerprintWith(user, secret)!;
    },
    revoke(session, now) {
      const until = revokeUntil(session);
      localRevoked.set(session.sid, until);
      lastSeen.delete(session.sid);
      persist("revoke", () => store.revokeSession(session.sid, until, now));
      emit({ sid: session.sid });
    },
    revokeUser(user, now) {
      localValidAfter.set(user, Math.max(now, localValidAfter.get(user) ?? 0));
      persist("revoke-user", () => store.revokeUser(user, now));
      emit({ user });
    },
    ended(session) {
      const after = validAfterOf(session.user);
      return revokedUntil(session.sid) !== undefined || (after !== undefined && session.createdAt <= after);
    },
    onEnded(listener) {
      listeners.push(listener);
    },
    onKeysChanged(listener) {
      keyListeners.push(listener);
    },
    expiresAt(session) {
      return Math.min(session.createdAt + policy.absoluteMs, session.exp ?? Infinity);
    },
    keys: () => keyring,
    csrf: {
      token: (id) => keyring.mac("csrf", id)!,
      valid: (id, token) => id !== "" && keyring.macValid("csrf", id, token),
    },
    async flush() {
      await Promise.all([...checks]);
      await writes;
      await Promise.all(watches.map((w) => w.check()));
    },
    close() {
      for (const w of watches) w.stop();
    },
    get tracked() {
      return { seen: lastSeen.size, checked: lastChecked.size };
    },
  };
  return service;
}
