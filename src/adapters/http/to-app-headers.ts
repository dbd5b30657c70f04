// The one place the gateway's code asks "which headers does the app see" (requests), "which headers
// does the client see" (responses) and "who is the client": the pure functions in src/core/web
// (app-headers.ts, client-address.ts) decide; this file only adapts them to the gateway's config.

import { appRequestHeaders, appResponseHeaders, vouchedHost, type AppRequestInfo } from "../../core/web/app-headers.js";
import { clientAddress, type TrustedProxies } from "../../core/web/client-address.js";
import { headerValue, headerValues, type HeaderList } from "../../core/web/headers.js";

export type AppHeaderInfo = AppRequestInfo;

export const toAppHeaders = appRequestHeaders;
export const fromAppHeaders = appResponseHeaders;

/** Peers' answers when X-Forwarded-For plays no part (the usual case): the same peer gives the same answer. */
const byPeer = new Map<string, { readonly client: string; readonly forwardedFor: string }>();
const BY_PEER_MAX = 4096;

/** Who the client is: the TCP peer, or X-Forwarded-For walked back through trusted proxies only. */
export function appClientAddress(headers: HeaderList, remoteAddress: string, trusted: TrustedProxies): { readonly client: string; readonly forwardedFor: string } {
  // With no trusted proxies, or no X-Forwarded-For, the answer depends on the peer alone (clientAddress is pure).
  const xff = trusted.ranges.length === 0 ? [] : headerValues(headers, "x-forwarded-for");
  if (xff.length === 0) {
    const known = byPeer.get(remoteAddress);
    if (known) return known;
  }
  const c = clientAddress(remoteAddress, xff, trusted);
  const out = { client: c.address, forwardedFor: c.forwardedFor };
  if (xff.length === 0) {
    if (byPeer.size >= BY_PEER_MAX) byPeer.clear();
    byPeer.set(remoteAddress, out);
  }
  return out;
}

/** The host the app is told users reached (X-Forwarded-Host): an allowed host, else the public URL's. */
export function appHost(headers: HeaderList, allowedHosts: readonly string[], publicHost: string): string {
  return vouchedHost(headerValue(headers, "host"), allowedHosts, publicHost);
}
