// Sessions as the gateway app uses them (interim: helper-owned rewrite with persisted revocation,
// key ids and purpose-bound sealing replaces this file). A sealed cookie carries the session; the
// last activity and the revocations are kept in memory with bounded size.

import { checkSession, newSession, type SessionData, type SessionPolicy } from "../../core/web/index.js";
import type { Random } from "../../ports/index.js";
import { seal, unseal, type Keys } from "../../platform/seal.js";

export interface IssuedSession {
  readonly session: SessionData;
  /** The cookie's value (the Set-Cookie line is built by the app). */
  readonly cookie: string;
}

export interface Sessions {
  /** The valid session a cookie value carries at `now` (and its activity is recorded), or null. */
  open(cookieValue: string | undefined, now: number): SessionData | null;
  issue(user: string, now: number): IssuedSession;
  /** This session stays ended (until its absolute expiry, after which it cannot open anyway). */
  revoke(session: SessionData, now: number): void;
  /** When a session must end at the latest (absolute expiry), Unix ms. */
  expiresAt(session: SessionData): number;
}

export function createSessions(options: { keys: Keys; policy: SessionPolicy; random: Random }): Sessions {
  const { keys, policy, random } = options;
  const lastSeen = new Map<string, number>();
  const revoked = new Map<string, number>();
  // Opening a sealed cookie (AES-GCM, JSON) is most of a proxied request's own cost; the opened
  // content of recent cookies is kept (it is immutable; validity is checked anew each time).
  const opened = new Map<string, SessionData>();

  /** Bounded memory: forget activity older than the idle timeout and revocations past expiry. */
  const prune = (now: number) => {
    for (const [sid, t] of lastSeen) if (now - t >= policy.idleMs) lastSeen.delete(sid);
    for (const [sid, until] of revoked) if (until <= now) revoked.delete(sid);
  };

  return {
    open(token, now) {
      if (!token) return null;
      let data = opened.get(token);
      if (!data) {
        const raw = unseal<SessionData>(token, keys.seal);
        if (!raw || typeof raw.sid !== "string" || typeof raw.user !== "string" || typeof raw.createdAt !== "number" || typeof raw.lastSeenAt !== "number") return null;
        if (opened.size >= 10_000) opened.clear();
        opened.set(token, (data = raw));
      }
      if (revoked.has(data.sid)) return null;
      const check = checkSession({ ...data, lastSeenAt: Math.max(data.lastSeenAt, lastSeen.get(data.sid) ?? 0) }, now, policy);
      if (!check.valid) return null;
      if (lastSeen.size >= 50_000) prune(now);
      lastSeen.set(data.sid, now);
      return check.session;
    },
    issue(user, now) {
      const session = newSession(Buffer.from(random.bytes(18)).toString("base64url"), user, now);
      return { session, cookie: seal(session, keys.seal) };
    },
    revoke(session, now) {
      if (revoked.size >= 50_000) prune(now);
      revoked.set(session.sid, session.createdAt + policy.absoluteMs);
      lastSeen.delete(session.sid);
    },
    expiresAt(session) {
      return session.createdAt + policy.absoluteMs;
    },
  };
}
