// The one place the gateway's code asks "which headers does the app see" (requests), "which headers
// does the client see" (responses) and "who is the client": the pure functions in src/core/web
// (app-headers.ts, client-address.ts) decide; this file only adapts them to the gateway's config.

import { appRequestHeaders, appResponseHeaders, vouchedHost, type AppRequestInfo } from "../../core/web/app-headers.js";
import { clientAddress, type TrustedProxies } from "../../core/web/client-address.js";
import { headerValue, headerValues, type HeaderList } from "../../core/web/headers.js";

export type AppHeaderInfo = AppRequestInfo;

export const toAppHeaders = appRequestHeaders;
export const fromAppHeaders = appResponseHeaders;

/** Who the client is: the TCP peer, or X-Forwarded-For walked back through trusted proxies only. */
export function appClientAddress(headers: HeaderList, remoteAddress: string, trusted: TrustedProxies): { client: string; forwardedFor: string } {
  const c = clientAddress(remoteAddress, headerValues(headers, "x-forwarded-for"), trusted);
  return { client: c.address, forwardedFor: c.forwardedFor };
}

/** The host the app is told users reached (X-Forwarded-Host): an allowed host, else the public URL's. */
export function appHost(headers: HeaderList, allowedHosts: readonly string[], publicHost: string): string {
  return vouchedHost(headerValue(headers, "host"), allowedHosts, publicHost);
}
