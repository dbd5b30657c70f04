// Gateway sessions: what the (sealed) cookie carries and when it stops being valid. A new session
// id at every login (no fixation); idle and absolute timeouts.

export interface SessionData {
  /** Random session id, new at every login. */
  readonly sid: string;
  readonly user: string;
  /** Login time and last activity, Unix milliseconds. */
  readonly createdAt: number;
  readonly lastSeenAt: number;
  /**
   * Absolute expiry, Unix ms: createdAt + the issuing instance's session.absolute, sealed in the
   * cookie, so every instance (whatever its own absolute) ends it then, and a revocation kept until
   * it outlives the cookie (RT-B F4). Absent in cookies sealed before it existed.
   */
  readonly exp?: number;
}

export interface SessionPolicy {
  readonly idleMs: number;
  readonly absoluteMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleMs: 30 * 60_000, absoluteMs: 12 * 3600_000 };

export type SessionCheck = { readonly valid: true; readonly session: SessionData } | { readonly valid: false; readonly reason: "idle" | "expired" | "future" };

export function checkSession(s: SessionData, now: number, policy: SessionPolicy): SessionCheck {
  if (s.createdAt > now + 60_000 || s.lastSeenAt > now + 60_000) return { valid: false, reason: "future" };
  if (now - s.createdAt >= policy.absoluteMs || (s.exp !== undefined && now >= s.exp)) return { valid: false, reason: "expired" };
  if (now - s.lastSeenAt >= policy.idleMs) return { valid: false, reason: "idle" };
  return { valid: true, session: { ...s, lastSeenAt: now } };
}

export function newSession(sid: string, user: string, now: number): SessionData {
  return { sid, user, createdAt: now, lastSeenAt: now };
}

/** A session bound to the user's secret: `fp` is a keyed MAC of the secret at login (never the secret). */
export interface BoundSession extends SessionData {
  readonly fp: string;
}

/** What is known about revocations: the session's own (until when) and the user's "valid after". */
export interface Revocations {
  readonly revokedUntil: number | undefined;
  readonly validAfter: number | undefined;
}

export type SessionVerdict = SessionCheck | { readonly valid: false; readonly reason: "revoked" | "logged-out-everywhere" };

/** The whole decision for a session at `now`: revoked, logged out everywhere, then the timeouts. */
export function decideSession(s: SessionData, now: number, policy: SessionPolicy, revocations: Revocations): SessionVerdict {
  if (revocations.revokedUntil !== undefined) return { valid: false, reason: "revoked" };
  if (revocations.validAfter !== undefined && s.createdAt <= revocations.validAfter) return { valid: false, reason: "logged-out-everywhere" };
  return checkSession(s, now, policy);
}

/** A value opened from a cookie has the shape of a bound session (the seal proves who made it, not its shape across versions). */
export function isBoundSession(v: unknown): v is BoundSession {
  if (!v || typeof v !== "object") return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s.sid === "string" &&
    /^[A-Za-z0-9_-]{16,64}$/.test(s.sid) &&
    typeof s.user === "string" &&
    s.user.length > 0 &&
    s.user.length <= 64 &&
    Number.isSafeInteger(s.createdAt) &&
    Number.isSafeInteger(s.lastSeenAt) &&
    (s.exp === undefined || Number.isSafeInteger(s.exp)) &&
    typeof s.fp === "string" &&
    s.fp.length <= 64
  );
}
