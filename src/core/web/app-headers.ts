// THE one place that decides which headers the app receives and which of the app's headers reach the
// browser. Apps behind an auth proxy believe headers (Remote-User, X-Forwarded-*, REMOTE_USER from
// Remote_User, X-Real-IP, ...), so everything the client sends under such a name is dropped and the
// identity and forwarding headers are set only from what the gateway itself knows. Framing
// (Content-Length, Transfer-Encoding) is never copied: the HTTP client sets it from the body.

import { cookiesWithout } from "./cookies.js";
import type { HeaderList } from "./headers.js";

/** Hop-by-hop headers (RFC 9110 7.6.1 plus the legacy ones): they describe one connection, never forwarded. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate"]);

/** Request headers the client may never set for the app (exact names). */
const IDENTITY_EXACT: ReadonlySet<string> = new Set([
  // identity, as auth proxies and apps spell it (Authelia, oauth2-proxy, Grafana/Gitea X-WEBAUTH-USER, RStudio, Kong, ...)
  "x-user",
  "x-username",
  "x-user-name",
  "x-userid",
  "x-user-id",
  "x-user-email",
  "x-email",
  "x-groups",
  "x-usergroup",
  "x-preferred-username",
  "x-auth-user",
  "x-auth-username",
  "x-auth-email",
  "x-auth-groups",
  "x-rstudio-username",
  "x-credential-identifier",
  "x-anonymous-consumer",
  "x-goog-iap-jwt-assertion",
  "x-arr-clientcert",
  "x-client-verify",
  "x-client-dn",
  // where the request came from and what it asked for, as proxies spell it
  "forwarded",
  "x-forwarded",
  "x-real-ip",
  "x-client-ip",
  "client-ip",
  "true-client-ip",
  "x-cluster-client-ip",
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "fastly-client-ip",
  "x-originating-ip",
  "x-proxyuser-ip",
  "x-appengine-user-ip",
  "x-azure-clientip",
  "x-azure-socketip",
  "x-envoy-external-address",
  "x-envoy-original-path",
  "x-host",
  "x-original-host",
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-original-method",
  "x-original-forwarded-for",
  "x-scheme",
  "x-url-scheme",
  "front-end-https",
  "x-https",
  "x-script-name",
  "x-rstudio-root-path",
  "x-rstudio-request",
]);

/** Request headers the client may never set for the app (every name starting with one of these). */
const IDENTITY_PREFIXES: readonly string[] = [
  "remote-", // Remote-User, Remote-Groups, Remote-Email, Remote-Name (Authelia, Organizr, ...)
  "x-remote-", // X-Remote-User, X-Remote-Group, X-Remote-Addr, X-Remote-IP
  "x-forwarded-", // X-Forwarded-For/-Host/-Proto/-Port/-Prefix/-User/-Email/-Groups/-Preferred-Username/-Access-Token/-Client-Cert, ...
  "x-auth-request-", // oauth2-proxy
  "x-authenticated-", // X-Authenticated-User/-Userid/-Groups (Kong, Etherpad, Squid)
  "x-webauth-", // Grafana, Gitea, Forgejo
  "x-authentik-", // authentik
  "x-pomerium-",
  "x-vouch-",
  "x-consumer-", // Kong
  "x-ms-client-principal", // Azure App Service authentication
  "x-amzn-oidc-", // AWS ALB
  "x-goog-authenticated-user-", // Google IAP
  "cf-access-", // Cloudflare Access
  "tailscale-user-", // Tailscale serve
  "x-ssl-", // client certificates as nginx/HAProxy pass them
  "ssl-client-",
  "x-client-cert",
];

/** Headers that frame the request body or ask for an interim response: the HTTP client decides these. */
const FRAMING: ReadonlySet<string> = new Set(["content-length", "transfer-encoding", "expect"]);

/** What the gateway knows about a signed-in request. */
export interface AppRequestInfo {
  /** The signed-in user (Remote-User). */
  readonly user: string;
  /** The client's address as clientAddress() decided it. */
  readonly clientAddress: string;
  /** The X-Forwarded-For chain the gateway believes (clientAddress().forwardedFor). */
  readonly forwardedFor: string;
  /** The scheme users reach the gateway with. */
  readonly proto: "http" | "https";
  /** The host users reached the gateway at, as the gateway vouches for it: see vouchedHost(). */
  readonly host: string;
  /** Host header for the app (the upstream URL's host). */
  readonly upstreamHost: string;
  /** The gateway's own cookies (session, CSRF, ...): never passed to the app. */
  readonly cookieNames: readonly string[];
}

/**
 * Header names that may reach the app: letters, digits and "-" only (nginx's ignore_invalid_headers).
 * CGI/WSGI bridges turn every other character into "_" (Remote.User -> HTTP_REMOTE_USER).
 */
const APP_NAME = /^[0-9a-z-]+$/;

/** Names never passed although harmless-looking: Proxy becomes HTTP_PROXY in CGI (httpoxy). */
const NEVER: ReadonlySet<string> = new Set(["proxy"]);

const compact = (name: string): string => name.replace(/-/g, "");
const IDENTITY_EXACT_COMPACT: ReadonlySet<string> = new Set([...IDENTITY_EXACT].map(compact));
const IDENTITY_PREFIXES_COMPACT: readonly string[] = IDENTITY_PREFIXES.map(compact);
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Every header name listed in the Connection headers (lower case). */
function connectionNamed(headers: HeaderList): Set<string> {
  const named = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== "connection") continue;
    for (const token of value.split(",")) {
      const t = token.trim().toLowerCase();
      if (t) named.add(t);
    }
  }
  return named;
}

/**
 * Whether a (lower-case) name is an identity or forwarding header, also once its "-" are removed:
 * frameworks that normalise names read RemoteUser, -Remote-User or XForwardedFor as the real thing.
 */
function isIdentityHeader(name: string): boolean {
  if (IDENTITY_EXACT.has(name) || IDENTITY_PREFIXES.some((p) => name.startsWith(p))) return true;
  const c = compact(name);
  return IDENTITY_EXACT_COMPACT.has(c) || IDENTITY_PREFIXES_COMPACT.some((p) => c.startsWith(p));
}

/**
 * Whether a client's request header may reach the app unchanged. False for: names with anything
 * but letters, digits and "-" (nginx's underscores_in_headers off and ignore_invalid_headers on:
 * CGI/WSGI turn Remote_User and Remote.User into REMOTE_USER), Proxy (httpoxy), hop-by-hop and
 * Connection-named headers, framing, identity and forwarding headers (also with their "-" removed
 * or doubled), Host and Cookie (both rebuilt).
 */
export function passesToApp(name: string, connectionNames: ReadonlySet<string> = new Set()): boolean {
  const n = name.toLowerCase();
  if (!APP_NAME.test(n) || NEVER.has(n)) return false;
  if (HOP_BY_HOP.has(n) || connectionNames.has(n) || FRAMING.has(n)) return false;
  if (n === "host" || n === "cookie") return false;
  return !isIdentityHeader(n);
}

function checkValue(what: string, value: string): string {
  if (!FIELD_VALUE.test(value)) throw new TypeError(`${what} contains a character a header value cannot carry`);
  return value;
}

/**
 * The headers the app receives for a signed-in request, in the client's order (names lower case),
 * then Host, the rebuilt Cookie, Remote-User, X-Forwarded-For, X-Real-IP and X-Forwarded-Proto/-Host
 * from `info` only.
 * Throws TypeError when an `info` value cannot be a header value (never happens with validated input).
 */
export function appRequestHeaders(client: HeaderList, info: AppRequestInfo): [string, string][] {
  const named = connectionNamed(client);
  const out: [string, string][] = [["host", checkValue("upstreamHost", info.upstreamHost)]];
  const cookies: string[] = [];
  for (const [name, value] of client) {
    const n = name.toLowerCase();
    if (n === "cookie") {
      if (!named.has("cookie")) cookies.push(value);
    } else if (passesToApp(n, named) && FIELD_VALUE.test(value)) out.push([n, value]);
  }
  const cookie = cookiesWithout(cookies, info.cookieNames);
  if (cookie !== null && FIELD_VALUE.test(cookie)) out.push(["cookie", cookie]);
  out.push(
    ["remote-user", checkValue("user", info.user)],
    ["x-forwarded-for", checkValue("forwardedFor", info.forwardedFor)],
    ["x-real-ip", checkValue("clientAddress", info.clientAddress)],
    ["x-forwarded-proto", info.proto],
    ["x-forwarded-host", checkValue("host", info.host)],
  );
  return out;
}

/**
 * The host the gateway vouches for in X-Forwarded-Host: the client's Host when it is one of the
 * allowed hosts (compared case-insensitively, a trailing dot ignored), otherwise the public URL's
 * host. An app building absolute URLs from X-Forwarded-Host therefore never points at a host the
 * admin did not list.
 */
export function vouchedHost(hostHeader: string | undefined, allowedHosts: readonly string[], publicHost: string): string {
  if (hostHeader === undefined) return publicHost;
  const h = hostHeader
    .trim()
    .toLowerCase()
    .replace(/\.(?=(:[0-9]+)?$)/, "");
  return allowedHosts.some((a) => a.toLowerCase() === h) ? h : publicHost;
}

/** The cookie name a Set-Cookie line sets (RFC 6265 5.2: up to the first "=", trimmed); "" for a nameless cookie. */
export function setCookieName(line: string): string {
  const semi = line.indexOf(";");
  const pair = semi < 0 ? line : line.slice(0, semi);
  const eq = pair.indexOf("=");
  return eq < 0 ? "" : pair.slice(0, eq).trim();
}

/**
 * The app's response headers as the browser receives them: hop-by-hop and Connection-named headers,
 * Transfer-Encoding and Trailer dropped, and no Set-Cookie that would set one of the gateway's
 * cookies (compared case-insensitively: an app must not overwrite or shadow the session). Nameless
 * cookies are dropped too: a browser stores "=otpgate_session=x" (or a pair without "=") under an
 * empty name and sends back its bare value, which in a Cookie header spells any name it likes.
 */
export function appResponseHeaders(app: HeaderList, cookieNames: readonly string[]): [string, string][] {
  const named = connectionNamed(app);
  const own = new Set(cookieNames.map((c) => c.toLowerCase()));
  const out: [string, string][] = [];
  for (const [name, value] of app) {
    const n = name.toLowerCase();
    if (HOP_BY_HOP.has(n) || named.has(n)) continue;
    if (n === "set-cookie") {
      const cookie = setCookieName(value);
      if (cookie === "" || own.has(cookie.toLowerCase())) continue;
    }
    out.push([n, value]);
  }
  return out;
}
