// The one place the gateway's code asks "which headers does the app see" (requests) and "which
// headers does the client see" (responses). Interim implementation until the pure functions in
// src/core/web/app-headers.ts (issue 9, config/identity part) are merged: switching is a change here.

import { cookiesWithout } from "../../core/web/cookies.js";
import { headerValues, type HeaderList } from "../../core/web/headers.js";

export interface AppHeaderInfo {
  readonly user: string;
  readonly clientAddress: string;
  readonly forwardedFor: string;
  readonly proto: "http" | "https";
  readonly host: string;
  readonly upstreamHost: string;
  readonly cookieNames: readonly string[];
}

/** Hop-by-hop and framing headers: the connection to the app is undici's, framed by undici. */
const HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate", "expect", "host", "content-length", "http2-settings"];
/** Identity and forwarding headers only the gateway may set. */
const IDENTITY = ["remote-user", "x-remote-user", "x-forwarded-user", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server", "x-forwarded-uri", "x-original-uri", "x-original-url", "x-rewrite-url", "x-real-ip", "forwarded", "x-client-ip", "true-client-ip", "client-ip", "x-cluster-client-ip", "cf-connecting-ip"];

function connectionNamed(headers: HeaderList): Set<string> {
  const named = new Set<string>();
  for (const v of headerValues(headers, "connection")) for (const t of v.split(",")) if (t.trim()) named.add(t.trim().toLowerCase());
  return named;
}

export function toAppHeaders(client: HeaderList, info: AppHeaderInfo): [string, string][] {
  const drop = new Set([...HOP, ...IDENTITY, "cookie", ...connectionNamed(client)]);
  const out: [string, string][] = [];
  for (const [n, v] of client) if (!drop.has(n) && !n.includes("_")) out.push([n, v]);
  const cookie = cookiesWithout(headerValues(client, "cookie"), info.cookieNames);
  if (cookie !== null) out.push(["cookie", cookie]);
  out.push(["host", info.upstreamHost], ["remote-user", info.user], ["x-forwarded-for", info.forwardedFor], ["x-forwarded-proto", info.proto], ["x-forwarded-host", info.host]);
  return out;
}

/** The app's response headers without hop-by-hop/framing ones (node:http frames the response to the client), and never our cookies. */
export function fromAppHeaders(app: HeaderList, cookieNames: readonly string[]): [string, string][] {
  const drop = new Set([...HOP.filter((h) => h !== "content-length" && h !== "host"), ...connectionNamed(app)]);
  const out: [string, string][] = [];
  for (const [n, v] of app) {
    if (drop.has(n)) continue;
    if (n === "set-cookie" && cookieNames.includes(v.slice(0, Math.max(0, v.indexOf("="))).trim())) continue;
    out.push([n, v]);
  }
  return out;
}

/** Who the client is: the TCP peer (X-Forwarded-For is believed only from trusted proxies; interim: none). */
export function appClientAddress(_headers: HeaderList, remoteAddress: string, _trustedProxies: readonly string[]): { client: string; forwardedFor: string } {
  return { client: remoteAddress, forwardedFor: remoteAddress };
}
