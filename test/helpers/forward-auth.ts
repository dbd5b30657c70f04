// What the README's forward-auth setups (nginx, Caddy) must keep from the app: identity and
// forwarding headers a client forges, and the gateway's own cookies (a session is a bearer token for
// every app behind the gateway). Shared by test/system/gateway.test.ts and gateway-caddy.test.ts.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";

/**
 * Identity headers a client may forge, in the spellings apps read: with `-`, with `_` (CGI/WSGI:
 * REMOTE_USER), in any case, each sent as its own header line (Node's client would merge names that
 * differ only in case). Every value contains "forged" or 6.6.6.6, so a leak is found by value.
 */
export const FORGED: [string, string][] = [
  ["Remote-User", "forged-admin"],
  ["remote-user", "forged-admin"],
  ["Remote_User", "forged-admin"],
  ["remote_user", "forged-admin"],
  ["REMOTE_USER", "forged-admin"],
  ["Remote-Groups", "forged-admins"],
  ["Remote-Name", "forged-admin"],
  ["Remote_Email", "forged-admin@example.com"],
  ["X-Remote-User", "forged-admin"],
  ["X_Remote_User", "forged-admin"],
  ["X-Forwarded-User", "forged-admin"],
  ["x_forwarded_user", "forged-admin"],
  ["X-Forwarded-Email", "forged-admin@example.com"],
  ["X-Forwarded-Groups", "forged-admins"],
  ["X-Forwarded-Preferred-Username", "forged-admin"],
  ["X-Forwarded-For", "6.6.6.6"],
  ["X-Forwarded-Host", "forged.example"],
  ["X-Forwarded-Proto", "forged"],
  ["X-Forwarded-Port", "6666"],
  ["X-RStudio-Username", "forged-admin"], // RStudio Workbench's default auth-proxy-user-header
  ["X-WEBAUTH-USER", "forged-admin"], // Grafana, Gitea
  ["X-Auth-Request-User", "forged-admin"], // oauth2-proxy
  ["X-Auth-Request-Email", "forged-admin@example.com"],
  ["X-Authenticated-User", "forged-admin"],
  ["X-User", "forged-admin"],
  ["Forwarded", "for=6.6.6.6;host=forged.example"],
  ["X-Real-IP", "6.6.6.6"],
  ["X-Original-URL", "/forged"],
];

/** The headers the app received that carry a forged value (should be none). */
export function leakedForged(seen: IncomingHttpHeaders): [string, unknown][] {
  return Object.entries(seen).filter(([, v]) => /forged|6\.6\.6\.6|6666/.test(String(v)));
}

/** A GET with these exact header lines (Connection: close): the status and the Location. */
export function rawGet(port: number, path: string, lines: [string, string][]): Promise<{ status: number; location: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
    socket.on("error", reject);
    socket.on("end", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(data)?.[1] ?? 0);
      resolve({ status, location: /^location: (.*)\r$/im.exec(data)?.[1] ?? "" });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${lines.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`);
  });
}

/**
 * Cookie header lines a browser (or a client) may send with a valid session `session`, and the
 * cookies the app must then receive: the gateway's cookies (session, CSRF, device, with and without
 * __Host-) are gone wherever they stand, the app's own cookies arrive in order.
 */
export function cookieCases(session: string): { lines: [string, string][]; app: string | undefined }[] {
  const s = `otpgate_session=${session}`;
  return [
    { lines: [["Cookie", `a=1; ${s}; b=2`]], app: "a=1; b=2" },
    { lines: [["Cookie", `${s}; a=1`]], app: "a=1" },
    { lines: [["Cookie", `a=1; ${s}`]], app: "a=1" },
    { lines: [["Cookie", s]], app: undefined },
    { lines: [["Cookie", `a=1;${s};b=2`]], app: "a=1; b=2" },
    { lines: [["Cookie", `a=1;   ${s}  ;  b=2`]], app: "a=1; b=2" },
    { lines: [["Cookie", `otpgate_session =${session}; a=1`]], app: "a=1" },
    {
      lines: [
        ["Cookie", "a=1"],
        ["Cookie", s],
        ["Cookie", "b=2"],
      ],
      app: "a=1; b=2",
    },
    {
      lines: [
        ["Cookie", s],
        ["Cookie", "a=1; b=2"],
      ],
      app: "a=1; b=2",
    },
    {
      // four of the gateway's cookies, as a browser may hold them (one left from before the switch to https)
      lines: [["Cookie", `__Host-otpgate_csrf=c; a=1; ${s}; b=v=otpgate_x; __Host-otpgate_device=d; c=3; __Host-otpgate_session=old`]],
      app: "a=1; b=v=otpgate_x; c=3",
    },
  ];
}

/**
 * The app received exactly the expected cookies: none of the gateway's, all of its own, and (with
 * noEmptyParts) no empty parts left where a gateway cookie was. Caddy keeps a Cookie line that
 * becomes empty, which Node joins as "; a=1", so Caddy is held to that only for a single Cookie line.
 */
export function assertAppCookies(seen: IncomingHttpHeaders, expected: string | undefined, what: string, noEmptyParts = true): void {
  const got = seen.cookie === "" ? undefined : seen.cookie;
  assert.doesNotMatch(String(got ?? ""), /otpgate_(session|csrf|device)=/, `${what}: a gateway cookie reached the app`);
  if (noEmptyParts) assert.doesNotMatch(String(got ?? ""), /^[;\s]|;\s*;/, `${what}: the app's Cookie header starts with a cookie`);
  // Separators between cookies are the proxy's business; the cookies and their order are not.
  const norm = (c: string | undefined) =>
    (c ?? "")
      .split(";")
      .map((p) => p.trim())
      .filter(Boolean)
      .join("; ");
  assert.equal(norm(got), norm(expected), `${what}: the app's own cookies`);
}
