// Device cookies (OWASP, "Slow down online guessing attacks with device cookies"; red team RT-B,
// F2): after a successful sign-in the gateway gives the browser a long-lived cookie, sealed for its
// own keyring purpose ("device"), that names the user, the time it was issued and a random device
// id. A sign-in attempt for that user carrying it is exempt from the per-user pacing (regulation.ts
// Attempt.device), so attackers holding the pacing slot cannot shut the owner out. The seal proves
// the gateway made it; this module decides what it vouches for. Pure: the caller passes the time.

/** How long a device cookie vouches for its user (also its Max-Age). */
export const DEVICE_COOKIE_MAX_AGE_MS = 30 * 24 * 3600_000;

/** What a device cookie carries (sealed; never shown to the app). */
export interface DeviceClaim {
  /** The user it was issued to after a successful sign-in. */
  readonly user: string;
  /** When it was issued, Unix ms. */
  readonly iat: number;
  /** A random id, new at every issue: its failures are counted under it. */
  readonly id: string;
  /** The decision service's own device token for this user (opaque here), when it gave one. */
  readonly srv?: string;
}

const ID = /^[A-Za-z0-9_-]{16,64}$/;

/** A value opened from a device cookie has the shape of a claim (the seal proves who made it, not its shape across versions). */
export function isDeviceClaim(v: unknown): v is DeviceClaim {
  if (!v || typeof v !== "object") return false;
  const c = v as Record<string, unknown>;
  return (
    typeof c.user === "string" &&
    c.user.length > 0 &&
    c.user.length <= 256 &&
    Number.isSafeInteger(c.iat) &&
    typeof c.id === "string" &&
    ID.test(c.id) &&
    (c.srv === undefined || (typeof c.srv === "string" && c.srv.length <= 512))
  );
}

/** Why a claim does not vouch for `user` at `now` (null: it does). The user's "log out everywhere" is the caller's to check. */
export function deviceClaimProblem(claim: DeviceClaim, user: string, now: number): "other-user" | "expired" | "future" | null {
  if (claim.user !== user) return "other-user";
  if (claim.iat > now + 60_000) return "future";
  if (now - claim.iat >= DEVICE_COOKIE_MAX_AGE_MS) return "expired";
  return null;
}
