// The gateway's device cookies (core/web/device-cookie.ts says what they vouch for): sealed with
// the keyring's "device" purpose, so they open on every instance that shares keys_file and after
// any restart, and no session, CSRF token or draft can pass for one. Set with the session after a
// successful sign-in (HttpOnly, SameSite=Strict, Path=/, Max-Age 30 days, __Host- behind https);
// read only by the sign-in; never passed to the app, and the app cannot set it (cookie-names.ts
// puts the name on the list both directions strip).

import { DEVICE_COOKIE_MAX_AGE_MS, deviceClaimProblem, isDeviceClaim, type DeviceClaim } from "../../core/web/index.js";
import type { Keyring } from "../../platform/keyring.js";
import type { Random } from "../../ports/index.js";
import type { GatewayCookies } from "./cookie-names.js";

export interface DeviceCookies {
  /**
   * The claim of the device cookie among `cookies` when it vouches for `user` at `now` (sealed by
   * one of the current keys for purpose "device", issued to this user within 30 days, not before
   * the user's "log out everywhere"); null otherwise.
   */
  read(cookies: ReadonlyMap<string, string>, user: string, now: number): DeviceClaim | null;
  /** The Set-Cookie value of a new device cookie for `user` (a new id); `srv`: the decision service's own token. */
  issue(user: string, now: number, srv?: string): string;
}

export interface DeviceCookieDeps {
  /** The keyring as it is now (rotations are picked up). */
  keys(): Keyring;
  readonly random: Random;
  readonly names: Pick<GatewayCookies, "device" | "deviceAttributes">;
  /** The user logged out everywhere (or got a new secret) at or after `iat`: cookies issued then vouch for nothing. */
  endedSince(user: string, iat: number): boolean;
}

export function createDeviceCookies(deps: DeviceCookieDeps): DeviceCookies {
  const maxAge = Math.floor(DEVICE_COOKIE_MAX_AGE_MS / 1000);
  return {
    read(cookies, user, now) {
      const value = cookies.get(deps.names.device);
      if (!value) return null;
      const claim = deps.keys().open("device", value);
      if (!isDeviceClaim(claim) || deviceClaimProblem(claim, user, now) !== null) return null;
      return deps.endedSince(user, claim.iat) ? null : claim;
    },
    issue(user, now, srv) {
      const claim: DeviceClaim = { user, iat: now, id: Buffer.from(deps.random.bytes(16)).toString("base64url"), ...(srv ? { srv } : {}) };
      return `${deps.names.device}=${deps.keys().seal("device", claim)}; Max-Age=${maxAge}; ${deps.names.deviceAttributes}`;
    },
  };
}
