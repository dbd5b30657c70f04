// Gateway sessions: what the (sealed) cookie carries and when it stops being valid. A new session
// id at every login (no fixation); idle and absolute timeouts.

export interface SessionData {
  /** Random session id, new at every login. */
  readonly sid: string;
  readonly user: string;
  /** Login time and last activity, Unix milliseconds. */
  readonly createdAt: number;
  readonly lastSeenAt: number;
}

export interface SessionPolicy {
  readonly idleMs: number;
  readonly absoluteMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleMs: 30 * 60_000, absoluteMs: 12 * 3600_000 };

export type SessionCheck = { readonly valid: true; readonly session: SessionData } | { readonly valid: false; readonly reason: "idle" | "expired" | "future" };

export function checkSession(s: SessionData, now: number, policy: SessionPolicy): SessionCheck {
  if (s.createdAt > now + 60_000 || s.lastSeenAt > now + 60_000) return { valid: false, reason: "future" };
  if (now - s.createdAt >= policy.absoluteMs) return { valid: false, reason: "expired" };
  if (now - s.lastSeenAt >= policy.idleMs) return { valid: false, reason: "idle" };
  return { valid: true, session: { ...s, lastSeenAt: now } };
}

export function newSession(sid: string, user: string, now: number): SessionData {
  return { sid, user, createdAt: now, lastSeenAt: now };
}
