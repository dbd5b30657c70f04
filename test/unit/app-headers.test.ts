// The one function that builds what the app receives (issue 9, finding 4): nothing a client writes
// under an identity, forwarding, framing or hop-by-hop name reaches the app; identity comes from the
// gateway only; the session cookie never reaches the app, and the app cannot set it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { HOP_BY_HOP, appRequestHeaders, appResponseHeaders, passesToApp, setCookieName, vouchedHost, type AppRequestInfo } from "../../src/core/web/app-headers.js";

const info: AppRequestInfo = {
  user: "alice",
  clientAddress: "203.0.113.9",
  forwardedFor: "203.0.113.9",
  proto: "https",
  host: "app.example.com",
  upstreamHost: "127.0.0.1:8787",
  cookieNames: ["otpgate_session", "otpgate_csrf"],
};

const names = (h: [string, string][]) => h.map(([n]) => n);
const values = (h: [string, string][], name: string) => h.filter(([n]) => n === name).map(([, v]) => v);

test("identity and forwarding headers come from the gateway only, once each", () => {
  const out = appRequestHeaders([["accept", "text/html"]], info);
  assert.deepEqual(out, [
    ["host", "127.0.0.1:8787"],
    ["accept", "text/html"],
    ["remote-user", "alice"],
    ["x-forwarded-for", "203.0.113.9"],
    ["x-real-ip", "203.0.113.9"],
    ["x-forwarded-proto", "https"],
    ["x-forwarded-host", "app.example.com"],
  ]);
});

test("every header a client could use to claim an identity or an origin is dropped (exact names and prefixes, any case)", () => {
  const forged = [
    "Remote-User",
    "remote-user",
    "REMOTE-USER",
    "Remote-Groups",
    "Remote-Email",
    "Remote-Name",
    "X-Remote-User",
    "X-Remote-Group",
    "X-Remote-Addr",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Groups",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Access-Token",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Forwarded-Scheme",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
    "X-Forwarded-Client-Cert",
    "X-Forwarded",
    "Forwarded",
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Groups",
    "X-Auth-Request-Access-Token",
    "X-WEBAUTH-USER",
    "X-WEBAUTH-EMAIL",
    "X-WEBAUTH-NAME",
    "X-Authenticated-User",
    "X-Authenticated-Userid",
    "X-Authenticated-Groups",
    "X-authentik-username",
    "X-Pomerium-Claim-Email",
    "X-Vouch-User",
    "X-Consumer-Username",
    "X-Credential-Identifier",
    "X-Anonymous-Consumer",
    "X-MS-CLIENT-PRINCIPAL-NAME",
    "X-Amzn-Oidc-Identity",
    "X-Goog-Authenticated-User-Email",
    "X-Goog-IAP-JWT-Assertion",
    "Cf-Access-Authenticated-User-Email",
    "Cf-Access-Jwt-Assertion",
    "Tailscale-User-Login",
    "X-User",
    "X-Username",
    "X-User-Id",
    "X-Email",
    "X-Auth-User",
    "X-Auth-Username",
    "X-Preferred-Username",
    "X-RStudio-Username",
    "X-SSL-Client-DN",
    "X-SSL-Client-Verify",
    "SSL-Client-Verify",
    "X-Client-Cert",
    "X-Client-Verify",
    "X-ARR-ClientCert",
    "X-Real-IP",
    "X-Client-IP",
    "Client-IP",
    "True-Client-IP",
    "X-Cluster-Client-IP",
    "CF-Connecting-IP",
    "CF-Connecting-IPv6",
    "Fastly-Client-IP",
    "X-Originating-IP",
    "X-ProxyUser-Ip",
    "X-Envoy-External-Address",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Original-URI",
    "X-Original-Host",
    "X-Original-Method",
    "X-Host",
    "X-Scheme",
    "X-Url-Scheme",
    "Front-End-Https",
    "X-Script-Name",
    "X-RStudio-Root-Path",
    "X-RStudio-Request",
  ];
  const client: [string, string][] = forged.map((n) => [n, "mallory"]);
  client.push(["accept-language", "en"]);
  const out = appRequestHeaders(client, info);
  for (const n of forged) assert.equal(passesToApp(n), false, n);
  assert.ok(!out.some(([, v]) => v === "mallory"), JSON.stringify(out));
  assert.deepEqual(values(out, "remote-user"), ["alice"]);
  assert.deepEqual(values(out, "x-forwarded-for"), ["203.0.113.9"]);
  assert.deepEqual(values(out, "x-forwarded-host"), ["app.example.com"]);
  assert.deepEqual(values(out, "x-forwarded-proto"), ["https"]);
  assert.deepEqual(values(out, "accept-language"), ["en"]);
});

test("any header name with an underscore is dropped (CGI/WSGI read Remote_User as REMOTE_USER)", () => {
  const client: [string, string][] = [
    ["remote_user", "mallory"],
    ["x_forwarded_user", "mallory"],
    ["http_remote_user", "mallory"],
    ["x_custom", "v"],
    ["_", "v"],
    ["x-ok", "kept"],
  ];
  const out = appRequestHeaders(client, info);
  assert.deepEqual(
    names(out).filter((n) => n.includes("_")),
    [],
  );
  assert.deepEqual(values(out, "x-ok"), ["kept"]);
  assert.equal(passesToApp("Remote_User"), false);
  assert.equal(passesToApp("X_Forwarded_User"), false);
});

test("hop-by-hop, framing, Expect and Host from the client never pass; Host is the upstream's", () => {
  const client: [string, string][] = [
    ["host", "evil.example"],
    ["connection", "keep-alive"],
    ["keep-alive", "timeout=5"],
    ["proxy-connection", "keep-alive"],
    ["te", "trailers"],
    ["trailer", "remote-user"],
    ["transfer-encoding", "chunked"],
    ["upgrade", "h2c"],
    ["proxy-authorization", "Basic x"],
    ["proxy-authenticate", "Basic"],
    ["content-length", "5"],
    ["expect", "100-continue"],
    ["http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"],
    ["content-type", "text/plain"],
  ];
  const out = appRequestHeaders(client, info);
  for (const n of HOP_BY_HOP) assert.ok(!names(out).includes(n), n);
  for (const n of ["content-length", "expect"]) assert.ok(!names(out).includes(n), n);
  assert.deepEqual(values(out, "host"), ["127.0.0.1:8787"]);
  assert.deepEqual(values(out, "content-type"), ["text/plain"]);
  // HTTP2-Settings is not listed in Connection here, so it passes as an ordinary header; named in Connection it is dropped:
  assert.deepEqual(
    values(
      appRequestHeaders(
        [
          ["connection", "Upgrade, HTTP2-Settings"],
          ["http2-settings", "x"],
        ],
        info,
      ),
      "http2-settings",
    ),
    [],
  );
});

test("every header named in any Connection header is dropped (names compared case-insensitively, lists with spaces and empties)", () => {
  const client: [string, string][] = [
    ["connection", "close, X-App-Token"],
    ["Connection", " ,x-other ,, Cookie"],
    ["x-app-token", "a"],
    ["x-other", "b"],
    ["x-kept", "c"],
    ["cookie", "theme=dark"],
    ["connection", "content-length"],
    ["content-length", "10"],
  ];
  const out = appRequestHeaders(client, info);
  assert.deepEqual(names(out), ["host", "x-kept", "remote-user", "x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host"]);
});

test("a Connection header naming our own headers does not remove them (they are set after the client's)", () => {
  const out = appRequestHeaders([["connection", "remote-user, x-forwarded-for, host"]], info);
  assert.deepEqual(values(out, "remote-user"), ["alice"]);
  assert.deepEqual(values(out, "x-forwarded-for"), ["203.0.113.9"]);
  assert.deepEqual(values(out, "host"), ["127.0.0.1:8787"]);
});

test("cookies: the gateway's cookies are stripped however they are written; the rest is one Cookie header", () => {
  const cases: [string[], string | null][] = [
    [["otpgate_session=TOKEN"], null],
    [["otpgate_session =TOKEN"], null],
    [[" otpgate_session\t=TOKEN; theme=dark"], "theme=dark"],
    [["theme=dark; otpgate_session=TOKEN; lang=en"], "theme=dark; lang=en"],
    [["theme=dark", "otpgate_session=TOKEN", "lang=en"], "theme=dark; lang=en"],
    [["otpgate_csrf=abc;otpgate_session=x;;"], null],
    [["otpgate_session"], null],
    [["a=1; a=2"], "a=1; a=2"],
    [["OTPGATE_SESSION=x"], "OTPGATE_SESSION=x"], // not the session for the parser either (names are case-sensitive)
  ];
  for (const [cookies, expected] of cases) {
    const out = appRequestHeaders(
      cookies.map((c) => ["cookie", c] as [string, string]),
      info,
    );
    assert.deepEqual(values(out, "cookie"), expected === null ? [] : [expected], JSON.stringify(cookies));
    assert.ok(!out.some(([, v]) => v.includes("TOKEN")), JSON.stringify(cookies));
  }
});

test("header values with characters a header cannot carry are dropped; gateway values that cannot be headers throw", () => {
  const out = appRequestHeaders(
    [
      ["x-a", "ok"],
      ["x-b", "bad\r\nremote-user: mallory"],
      ["x-c", "nul\0"],
      ["x d", "v"],
      ["", "v"],
    ],
    info,
  );
  assert.deepEqual(names(out).slice(0, 2), ["host", "x-a"]);
  assert.ok(!out.some(([, v]) => v.includes("mallory")));
  assert.throws(() => appRequestHeaders([], { ...info, user: "a\r\nx-evil: 1" }), TypeError);
  assert.throws(() => appRequestHeaders([], { ...info, host: "h\n" }), TypeError);
  assert.throws(() => appRequestHeaders([], { ...info, upstreamHost: "h\r" }), TypeError);
});

test("repeated ordinary headers stay repeated and in order; names come out lower case", () => {
  const out = appRequestHeaders(
    [
      ["Accept", "a"],
      ["X-Trace", "1"],
      ["accept", "b"],
      ["x-trace", "2"],
    ],
    info,
  );
  assert.deepEqual(out.slice(1, 5), [
    ["accept", "a"],
    ["x-trace", "1"],
    ["accept", "b"],
    ["x-trace", "2"],
  ]);
});

test("the forwarded-for chain and client address are whatever the gateway decided, never appended to", () => {
  const out = appRequestHeaders([["x-forwarded-for", "6.6.6.6"]], { ...info, forwardedFor: "198.51.100.4, 10.0.0.2", clientAddress: "198.51.100.4" });
  assert.deepEqual(values(out, "x-forwarded-for"), ["198.51.100.4, 10.0.0.2"]);
  assert.deepEqual(values(out, "x-real-ip"), ["198.51.100.4"]);
});

test("vouchedHost: the client's Host only when it is an allowed host, otherwise the public URL's host", () => {
  const allowed = ["app.example.com", "rstudio.example.com:8443"];
  assert.equal(vouchedHost("app.example.com", allowed, "app.example.com"), "app.example.com");
  assert.equal(vouchedHost("APP.Example.COM", allowed, "app.example.com"), "app.example.com");
  assert.equal(vouchedHost("app.example.com.", allowed, "app.example.com"), "app.example.com");
  assert.equal(vouchedHost("rstudio.example.com:8443", allowed, "app.example.com"), "rstudio.example.com:8443");
  assert.equal(vouchedHost("rstudio.example.com.:8443", allowed, "app.example.com"), "rstudio.example.com:8443");
  for (const evil of ["evil.example", "rstudio.example.com", "app.example.com:81", "app.example.com@evil", "app.example.com, evil", "", "app.example.com.evil"]) {
    assert.equal(vouchedHost(evil, allowed, "app.example.com"), "app.example.com", evil);
  }
  assert.equal(vouchedHost(undefined, allowed, "app.example.com"), "app.example.com");
});

test("responses: hop-by-hop, Connection-named, Transfer-Encoding and Trailer are dropped; the rest passes in order", () => {
  const app: [string, string][] = [
    ["Content-Type", "text/html"],
    ["connection", "keep-alive, X-Internal"],
    ["keep-alive", "timeout=5"],
    ["transfer-encoding", "chunked"],
    ["trailer", "x-checksum"],
    ["upgrade", "h2c"],
    ["proxy-authenticate", "Basic"],
    ["x-internal", "1"],
    ["content-length", "12"],
    ["set-cookie", "theme=dark; Path=/"],
    ["cache-control", "no-store"],
  ];
  assert.deepEqual(appResponseHeaders(app, info.cookieNames), [
    ["content-type", "text/html"],
    ["content-length", "12"],
    ["set-cookie", "theme=dark; Path=/"],
    ["cache-control", "no-store"],
  ]);
});

test("responses: the app cannot set, overwrite or expire the gateway's cookies", () => {
  const mine = ["otpgate_session", "__Host-otpgate_session", "otpgate_csrf"];
  const refused = [
    "otpgate_session=evil; Path=/",
    " otpgate_session =evil",
    "otpgate_session=; Max-Age=0",
    "OTPGATE_SESSION=x",
    "__Host-otpgate_session=x; Secure; Path=/",
    "__host-otpgate_session=x",
    "otpgate_csrf=x",
  ];
  const kept = ["otpgate_sessionx=1", "xotpgate_session=1", "theme=dark; otpgate_session=not-a-name-here"];
  const out = appResponseHeaders(
    [...refused, ...kept].map((v) => ["set-cookie", v] as [string, string]),
    mine,
  );
  assert.deepEqual(values(out, "set-cookie"), kept);
});

// Red team RT-A (second pass): a nameless cookie (RFC 6265bis 5.6: "=otpgate_session=x" or a pair
// without "=") is stored with an empty name and sent back as its bare value, "otpgate_session=x" -
// in a Cookie header that spells any cookie name. The app sets no nameless cookie through the gateway.
test("responses: the app cannot set a nameless cookie, whose bare value would come back as a named one", () => {
  const mine = ["otpgate_session", "__Host-otpgate_session"];
  const refused = ["=otpgate_session=evil; Path=/", " =__Host-otpgate_session=evil", "=x", "otpgate_session", "theme; Path=/", "=", ""];
  const kept = ["theme=dark; Path=/", "a==b"];
  const out = appResponseHeaders(
    [...refused, ...kept].map((v) => ["set-cookie", v] as [string, string]),
    mine,
  );
  assert.deepEqual(values(out, "set-cookie"), kept);
});

test("setCookieName follows RFC 6265: up to the first '=', trimmed, only in the first pair", () => {
  assert.equal(setCookieName("a=b; Path=/"), "a");
  assert.equal(setCookieName("  a  = b"), "a");
  assert.equal(setCookieName("novalue"), "");
  assert.equal(setCookieName("x; a=b"), "");
  assert.equal(setCookieName("=b"), "");
});

// Red team 1, F7: CGI/WSGI bridges map every non-alphanumeric character of a header name to "_"
// (Remote.User -> HTTP_REMOTE_USER); "Proxy" becomes HTTP_PROXY (httpoxy); a name that is an
// identity header once its dashes are removed (RemoteUser, -Remote-User) is read as one by
// frameworks that normalise names. Only names of letters, digits and "-" pass, never Proxy, and
// never a name that equals an identity header once "-" are removed.
test("header names a CGI bridge or a normalising framework would read as identity never reach the app (F7)", () => {
  const forged = [
    "Remote.User",
    "Remote~User",
    "Remote+User",
    "Remote|User",
    "Remote'User",
    "Remote!User",
    "Remote*User",
    "Remote#User",
    "Remote$User",
    "Remote%User",
    "Remote&User",
    "Remote^User",
    "Remote`User",
    "X.Forwarded.For",
    "X-Forwarded.User",
    "Proxy",
    "proxy",
    "PROXY",
    "-Remote-User",
    "Remote-User-",
    "RemoteUser",
    "remoteuser",
    "XForwardedFor",
    "XRealIP",
    "X-RealIP",
    "XRemoteUser",
    "Remote--User",
    "XWEBAUTHUSER",
    "XAuthRequestUser",
    "XForwarded-User",
  ];
  const client: [string, string][] = forged.map((n) => [n, "mallory"]);
  client.push(["X-Custom-2", "kept"]);
  const out = appRequestHeaders(client, info);
  for (const n of forged) assert.equal(passesToApp(n), false, n);
  assert.ok(!out.some(([, v]) => v === "mallory"), JSON.stringify(out));
  assert.deepEqual(values(out, "x-custom-2"), ["kept"]);
  assert.equal(passesToApp("Accept-Language"), true);
  assert.equal(passesToApp("If-None-Match"), true);
});
