// The cookies the gateway sets and reads, by configuration. Behind an https public_url all carry
// the __Host- prefix: the browser then accepts them only with Secure, Path=/ and no Domain, so a
// sibling subdomain cannot plant (toss) a session or a CSRF cookie of its choosing. That is why the
// CSRF cookie lives at Path=/ there (it is stripped before requests reach the app, like the
// session); over plain http (no prefix possible) it stays at the pages' prefix.

import type { GatewayConfig } from "./gateway-config.js";

export interface GatewayCookies {
  readonly session: string;
  readonly csrf: string;
  /** Attributes of the session cookie (besides SameSite: Lax for the session, Strict for CSRF). */
  readonly attributes: string;
  readonly csrfAttributes: string;
  /** The device cookie (device-cookies.ts): exempts its user from per-user pacing; read only by the sign-in. */
  readonly device: string;
  /** Its attributes (Max-Age is added when it is set). */
  readonly deviceAttributes: string;
  /** Every name the gateway reads: never forwarded to the app (appRequestHeaders' cookieNames). */
  readonly all: readonly string[];
}

export const CSRF_COOKIE_BASE = "otpgate_csrf";
export const DEVICE_COOKIE_BASE = "otpgate_device";

export function gatewayCookies(config: Pick<GatewayConfig, "cookieName" | "publicUrl" | "pagesPrefix">): GatewayCookies {
  const https = config.publicUrl.protocol === "https:";
  const session = https ? `__Host-${config.cookieName}` : config.cookieName;
  const csrf = https ? `__Host-${CSRF_COOKIE_BASE}` : CSRF_COOKIE_BASE;
  // The plain names too: a cookie set before the switch to https (or planted) is read by no one, but
  // it must not reach the app either.
  const device = https ? `__Host-${DEVICE_COOKIE_BASE}` : DEVICE_COOKIE_BASE;
  const all = [...new Set([session, csrf, device, config.cookieName, CSRF_COOKIE_BASE, DEVICE_COOKIE_BASE])];
  return {
    session,
    csrf,
    attributes: `Path=/; HttpOnly${https ? "; Secure" : ""}`,
    csrfAttributes: https ? "Path=/; HttpOnly; Secure" : `Path=${config.pagesPrefix}; HttpOnly`,
    device,
    deviceAttributes: `Path=/; HttpOnly${https ? "; Secure" : ""}; SameSite=Strict`,
    all,
  };
}
