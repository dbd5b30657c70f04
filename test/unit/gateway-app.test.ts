// The gateway app in-process: routing, logout, forward-auth, the proxy decision and what the app
// behind it receives (headers, framing), upgrades, the body deadline of the gateway's pages.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { appRequest, testApp } from "../helpers/gateway-app.js";

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;
const cookieOf = (setCookie: string) => setCookie.split(";")[0]!;

describe("gateway app: routing", () => {
  test("healthz, style, the login page with a CSRF cookie; anonymous GET is sent to login, other methods get 401; nothing reaches the app", async () => {
    const { app, upstream } = testApp();
    assert.equal((await appRequest(app, "/healthz")).text, "ok\n");
    const css = await appRequest(app, "/_otpgate/style.css");
    assert.equal(css.header("content-type"), "text/css");
    const login = await appRequest(app, "/_otpgate/login?rd=/reports");
    assert.equal(login.status, 200);
    assert.match(login.text, /name="rd" value="\/reports"/);
    assert.match(login.header("set-cookie")!, /^otpgate_csrf=[A-Za-z0-9_-]+; Path=\/_otpgate; HttpOnly; SameSite=Strict$/);
    assert.equal(login.header("x-frame-options"), "DENY");
    const anon = await appRequest(app, "/reports?x=1");
    assert.equal(anon.status, 302);
    assert.equal(anon.header("location"), "/_otpgate/login?rd=%2Freports%3Fx%3D1");
    assert.equal((await appRequest(app, "/api", { method: "POST", body: "x" })).status, 401);
    assert.equal(upstream.seen.length, 0);
  });

  test("only origin-form targets: absolute-form and '*' are refused with 400 and close the connection", async () => {
    const { app, upstream, signIn } = testApp();
    const { cookie } = signIn("alice");
    for (const target of ["http://evil.test/x", "*", "//evil.test/x", "evil"]) {
      const r = await appRequest(app, target, { headers: { cookie } });
      assert.equal(r.status, 400, target);
      assert.equal(r.header("connection"), "close");
    }
    assert.equal(upstream.seen.length, 0);
  });

  test("/metrics: loopback peers only, and not at all on the main listener when metrics_listen is set", async () => {
    const { app } = testApp();
    assert.equal((await appRequest(app, "/_otpgate/metrics", { remoteAddress: "127.0.0.1" })).status, 200);
    assert.match((await appRequest(app, "/_otpgate/metrics", { remoteAddress: "::1" })).text, /otpgate_logins_ok_total 0/);
    const outside = await appRequest(app, "/_otpgate/metrics", { remoteAddress: "192.0.2.7" });
    assert.equal(outside.status, 404);
    assert.doesNotMatch(outside.text, /otpgate_/);
    assert.equal((await appRequest(app, "/_otpgate/metrics", { remoteAddress: "::ffff:192.0.2.7" })).status, 404);
  });

  // Red team 1, F4: behind nginx/Caddy on the same host every request's peer is loopback, so a
  // loopback peer alone proved nothing: /metrics was public through the reverse proxy.
  test("/metrics is not served through a reverse proxy: not to a trusted proxy, nor with any forwarding header (F4)", async () => {
    const { app } = testApp({ trusted_proxies: ["127.0.0.1"] });
    assert.equal((await appRequest(app, "/_otpgate/metrics", { remoteAddress: "127.0.0.1" })).status, 404, "the trusted proxy's peer address");
    assert.equal((await appRequest(app, "/_otpgate/metrics", { remoteAddress: "::1" })).status, 200, "loopback that is not a trusted proxy");
    const plain = testApp().app;
    for (const [name, value] of [
      ["x-forwarded-for", "203.0.113.9"],
      ["forwarded", "for=203.0.113.9"],
      ["x-real-ip", "203.0.113.9"],
      ["X-Forwarded-Host", "app.test"],
      ["via", "1.1 nginx"],
    ] as const) {
      const r = await appRequest(plain, "/_otpgate/metrics", { remoteAddress: "127.0.0.1", headers: [[name, value]] });
      assert.equal(r.status, 404, name);
      assert.doesNotMatch(r.text, /otpgate_/);
    }
    assert.equal((await appRequest(plain, "/_otpgate/metrics", { remoteAddress: "127.0.0.1" })).status, 200);
  });
});

describe("gateway app: logout", () => {
  test("POST with the form's CSRF token ends the session (the cookie no longer opens) and clears the cookie; without the token nothing changes", async () => {
    const { app, signIn, upstream, logs } = testApp();
    const { cookie } = signIn("alice");
    assert.equal((await appRequest(app, "/x", { headers: { cookie } })).status, 200);
    const form = await appRequest(app, "/_otpgate/logout", { headers: { cookie } });
    const csrfCookie = cookieOf(form.header("set-cookie")!);
    const refused = await appRequest(app, "/_otpgate/logout", {
      method: "POST",
      headers: { cookie: `${cookie}; ${csrfCookie}`, "content-type": "application/x-www-form-urlencoded" },
      body: "csrf=wrong",
    });
    assert.equal(refused.status, 403);
    assert.equal((await appRequest(app, "/x", { headers: { cookie } })).status, 200, "a refused logout changes nothing");
    const out = await appRequest(app, "/_otpgate/logout", {
      method: "POST",
      headers: { cookie: `${cookie}; ${csrfCookie}`, "content-type": "application/x-www-form-urlencoded" },
      body: `csrf=${csrfOf(form.text)}`,
    });
    assert.equal(out.status, 303);
    assert.equal(out.header("location"), "/_otpgate/login");
    assert.match(out.header("set-cookie")!, /^otpgate_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Lax$/);
    assert.equal((await appRequest(app, "/x", { headers: { cookie } })).status, 302, "the old cookie is refused");
    assert.equal(upstream.seen.length, 2);
    assert.deepEqual(logs.at(-1), { event: "logout", user: "alice", ip: "192.0.2.10" });
  });

  test("a form body slower than limits.body_ms is cut: the page answers without waiting for it", async () => {
    const { app, config } = testApp({}, { limits: { bodyMs: 300 } });
    const started = Date.now();
    const never = {
      async *[Symbol.asyncIterator]() {
        yield Buffer.from("csrf=");
        await new Promise(() => undefined);
      },
    };
    const slow = appRequest(app, "/_otpgate/logout", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "transfer-encoding": "chunked" }, body: never });
    const r = await Promise.race([slow, new Promise<null>((resolve) => setTimeout(() => resolve(null), config.limits.bodyMs + 2000))]);
    assert.ok(r !== null, "answered");
    assert.equal(r.status, 403);
    assert.ok(Date.now() - started >= config.limits.bodyMs - 50);
  });
});

describe("gateway app: forward-auth", () => {
  test("status mode: 200 with Remote-User when signed in, 401 otherwise; counted", async () => {
    const { app, signIn } = testApp();
    const { cookie } = signIn("alice");
    const ok = await appRequest(app, "/_otpgate/auth", { headers: { cookie } });
    assert.equal(ok.status, 200);
    assert.equal(ok.header("remote-user"), "alice");
    assert.equal(ok.header("cache-control"), "no-store");
    assert.equal((await appRequest(app, "/_otpgate/auth", { headers: { cookie: "otpgate_session=forged" } })).status, 401);
    assert.match(app.metricsText(), /otpgate_forward_auth_allowed_total 1\n[^]*otpgate_forward_auth_denied_total 1\n/);
  });

  test("redirect mode: to the login page with the original URL, only on allowed hosts", async () => {
    const { app } = testApp({ forward_auth: "redirect" });
    const r = await appRequest(app, "/_otpgate/auth", { headers: { "x-forwarded-proto": "https", "x-forwarded-host": "app.test", "x-forwarded-uri": "/reports?a=1" } });
    assert.equal(r.status, 302);
    assert.equal(r.header("location"), `http://app.test/_otpgate/login?rd=${encodeURIComponent("https://app.test/reports?a=1")}`);
    const evil = await appRequest(app, "/_otpgate/auth", { headers: { "x-forwarded-host": "evil.test", "x-forwarded-uri": "/x" } });
    assert.equal(evil.header("location"), "http://app.test/_otpgate/login?rd=%2F");
  });
});

describe("gateway app: the proxy decision and what the app receives", () => {
  test("signed in: identity from the session only, no client identity/forwarding/underscore/hop-by-hop headers, not our cookie", async () => {
    const { app, signIn, upstream } = testApp();
    const { cookie } = signIn("alice");
    const r = await appRequest(app, "/reports?x=1", {
      headers: [
        ["cookie", `theme=dark; ${cookie}`],
        ["cookie", "otpgate_session =forged; lang=en"],
        ["remote-user", "root"],
        ["remote_user", "root"],
        ["x-forwarded-user", "root"],
        ["x-remote-user", "root"],
        ["x-real-ip", "10.0.0.1"],
        ["forwarded", "for=10.0.0.1"],
        ["x-forwarded-for", "10.0.0.1"],
        ["x-forwarded-port", "1"],
        ["x-forwarded-prefix", "/x"],
        ["x-original-url", "/admin"],
        ["connection", "keep-alive, x-secret"],
        ["x-secret", "1"],
        ["keep-alive", "timeout=5"],
        ["te", "trailers"],
        ["upgrade", "h2c"],
        ["accept", "text/html"],
      ],
    });
    assert.equal(r.status, 200);
    assert.equal(r.text, "app saw GET /reports?x=1");
    const sent = upstream.seen[0]!.req;
    assert.deepEqual(sent.headers, [
      ["host", "127.0.0.1:9"],
      ["accept", "text/html"],
      ["cookie", "theme=dark; lang=en"],
      ["remote-user", "alice"],
      ["x-forwarded-for", "192.0.2.10"],
      ["x-real-ip", "192.0.2.10"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "app.test"],
    ]);
    assert.equal(sent.body, null);
  });

  test("framing: Content-Length only for a length-delimited body; a chunked body goes without one (the library frames it); no body, no length", async () => {
    const { app, signIn, upstream } = testApp();
    const { cookie } = signIn("alice");
    await appRequest(app, "/a", { method: "POST", headers: { cookie, "content-length": "5", connection: "content-length" }, body: "hello" });
    await appRequest(app, "/b", { method: "OPTIONS", headers: { cookie, "transfer-encoding": "chunked" }, body: "GET /smuggled HTTP/1.1\r\n\r\n" });
    await appRequest(app, "/c", { method: "DELETE", headers: { cookie } });
    const [a, b, c] = upstream.seen;
    assert.deepEqual(
      a!.req.headers.filter(([n]) => n === "content-length" || n === "transfer-encoding"),
      [["content-length", "5"]],
      "Connection cannot remove the framing of a body that is forwarded",
    );
    assert.equal(a!.body, "hello");
    assert.deepEqual(
      b!.req.headers.filter(([n]) => n === "content-length" || n === "transfer-encoding"),
      [],
    );
    assert.equal(b!.body, "GET /smuggled HTTP/1.1\r\n\r\n", "the body travels as a body");
    assert.equal(c!.req.body, null);
    assert.ok(!c!.req.headers.some(([n]) => n === "content-length"));
  });

  // Red team 1, F2: a body on GET reached apps that ignore it, which read it as the next request.
  test("a body on GET, HEAD or TRACE is refused with 400 and closes the connection; nothing reaches the app (F2)", async () => {
    const { app, signIn, upstream } = testApp();
    const { cookie } = signIn("alice");
    for (const method of ["GET", "HEAD", "TRACE"]) {
      for (const framing of [{ "content-length": "4" }, { "transfer-encoding": "chunked" }] as Record<string, string>[]) {
        const r = await appRequest(app, "/x", { method, headers: { cookie, ...framing }, body: "abcd" });
        assert.equal(r.status, 400, method);
        assert.equal(r.header("connection"), "close");
        if (method !== "HEAD") assert.match(r.text, new RegExp(`${method} request cannot carry a body`));
      }
    }
    assert.equal(upstream.seen.length, 0);
    assert.equal((await appRequest(app, "/x", { method: "DELETE", headers: { cookie }, body: "{}" })).status, 200, "DELETE keeps its body");
    assert.equal(upstream.seen[0]!.body, "{}");
  });

  test("transfer codings other than chunked alone are refused before the app", async () => {
    const { app, signIn, upstream } = testApp();
    const { cookie } = signIn("alice");
    for (const te of ["gzip, chunked", "identity", "chunked, chunked"]) {
      const r = await appRequest(app, "/x", { method: "POST", headers: { cookie, "transfer-encoding": te }, body: "0\r\n\r\n" });
      assert.equal(r.status, 400, te);
    }
    assert.equal(upstream.seen.length, 0);
  });

  test("the app's response: hop-by-hop and Connection-named headers dropped, our cookie cannot be set by the app; upstream errors are a 502 page", async () => {
    const { app, signIn, upstream } = testApp();
    const { cookie } = signIn("alice");
    upstream.reply = () => ({
      status: 201,
      headers: [
        ["connection", "x-internal"],
        ["x-internal", "1"],
        ["keep-alive", "timeout=5"],
        ["transfer-encoding", "chunked"],
        ["trailer", "x"],
        ["set-cookie", "otpgate_session=evil; Path=/"],
        ["set-cookie", "app=1"],
        ["content-length", "2"],
        ["x-app", "yes"],
      ],
      body: "ok",
    });
    const r = await appRequest(app, "/x", { headers: { cookie } });
    assert.equal(r.status, 201);
    assert.deepEqual(r.headers, [
      ["set-cookie", "app=1"],
      ["content-length", "2"],
      ["x-app", "yes"],
    ]);
    upstream.reply = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const down = await appRequest(app, "/x", { headers: { cookie } });
    assert.equal(down.status, 502);
    assert.match(down.text, /did not answer/);
    assert.match(app.metricsText(), /otpgate_upstream_errors_total 1/);
  });

  test("an expired session is anonymous", async () => {
    const t = testApp();
    const { cookie } = t.signIn("alice");
    t.clock.now += t.config.session.absoluteMs;
    assert.equal((await appRequest(t.app, "/x", { headers: { cookie } })).status, 302, "an expired session is anonymous");
  });
});

describe("gateway app: WebSocket upgrades", () => {
  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const accept = createHash("sha1")
    .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    .digest("base64");
  const wsHeaders = (cookie: string, extra: [string, string][] = []): [string, string][] => [
    ["host", "app.test"],
    ["cookie", cookie],
    ["connection", "Upgrade"],
    ["upgrade", "websocket"],
    ["sec-websocket-key", key],
    ["sec-websocket-version", "13"],
    ...extra,
  ];
  const upgradeReq = (headers: [string, string][], method = "GET") => ({ method, target: "/socket", headers, remoteAddress: "192.0.2.10", body: null });

  test("only a valid WebSocket request of a signed-in user reaches the app; h2c and other tokens are refused", async () => {
    const { app, signIn, upstream } = testApp();
    const { cookie } = signIn("alice");
    upstream.upgradeReply = () => [
      ["upgrade", "websocket"],
      ["connection", "Upgrade"],
      ["sec-websocket-accept", accept],
      ["sec-websocket-protocol", "chat"],
      ["x-other", "1"],
    ];
    const refusedCases: [string, [string, string][], string?][] = [
      [
        "h2c",
        [
          ["host", "app.test"],
          ["cookie", cookie],
          ["connection", "Upgrade, HTTP2-Settings"],
          ["upgrade", "h2c"],
          ["http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"],
        ],
      ],
      ["other token", wsHeaders(cookie).map(([n, v]) => [n, n === "upgrade" ? "TLS/1.2" : v])],
      ["two upgrade tokens", wsHeaders(cookie).map(([n, v]) => [n, n === "upgrade" ? "websocket, h2c" : v])],
      ["short key", wsHeaders(cookie).map(([n, v]) => [n, n === "sec-websocket-key" ? "AAAA" : v])],
      ["version 8", wsHeaders(cookie).map(([n, v]) => [n, n === "sec-websocket-version" ? "8" : v])],
      ["no Connection: upgrade", wsHeaders(cookie).filter(([n]) => n !== "connection")],
      ["POST", wsHeaders(cookie), "POST"],
    ];
    for (const [name, headers, method] of refusedCases) {
      const d = await app.upgrade(upgradeReq(headers, method));
      assert.deepEqual(d, { kind: "refused", status: 400 }, name);
    }
    assert.deepEqual(await app.upgrade(upgradeReq(wsHeaders("otpgate_session=forged"))), { kind: "refused", status: 401 });
    assert.equal(upstream.upgrades.length, 0);
    const ok = await app.upgrade(upgradeReq(wsHeaders(cookie)));
    assert.equal(ok.kind, "tunnel");
    if (ok.kind !== "tunnel") return;
    assert.equal(ok.accept, accept);
    assert.deepEqual(ok.extra, [["sec-websocket-protocol", "chat"]]);
    const sent = upstream.upgrades[0]!.headers;
    assert.ok(sent.some(([n, v]) => n === "remote-user" && v === "alice"));
    assert.ok(!sent.some(([n]) => n === "connection" || n === "upgrade" || n === "cookie"), "the library sends Connection/Upgrade itself");
  });

  test("the app's answer must be websocket with the right accept; otherwise its connection is destroyed", async () => {
    const { app, signIn, upstream } = testApp();
    const { cookie } = signIn("alice");
    for (const reply of [
      [
        ["upgrade", "h2c"],
        ["sec-websocket-accept", accept],
      ],
      [
        ["upgrade", "websocket"],
        ["sec-websocket-accept", "wrong"],
      ],
      [["upgrade", "websocket"]],
    ] as [string, string][][]) {
      upstream.upgradeReply = () => reply;
      const d = await app.upgrade(upgradeReq(wsHeaders(cookie)));
      assert.deepEqual(d, { kind: "refused", status: 502 });
      assert.equal(upstream.upgrades.at(-1)!.socket.destroyed, true, "no leaked app connection");
    }
  });

  test("tunnels end on logout and at the session's absolute expiry", async () => {
    const { app, signIn, upstream } = testApp();
    const alice = signIn("alice");
    const bob = signIn("bob");
    upstream.upgradeReply = () => [
      ["upgrade", "websocket"],
      ["sec-websocket-accept", accept],
    ];
    const open = async (cookie: string) => {
      const d = await app.upgrade(upgradeReq(wsHeaders(cookie)));
      assert.equal(d.kind, "tunnel");
      if (d.kind !== "tunnel") throw new Error("no tunnel");
      app.track(d.session, [d.socket]);
      return d;
    };
    const a = await open(alice.cookie);
    const b = await open(bob.cookie);
    assert.equal(app.tunnels.size, 2);
    assert.equal(
      app.tunnels.closeTunnels((s) => s.sid === alice.sid),
      1,
    );
    assert.equal(a.socket.destroyed, true);
    assert.equal(b.socket.destroyed, false);
    assert.equal(app.tunnels.size, 1);
    app.tunnels.closeTunnels(() => true);
    assert.equal(b.socket.destroyed, true);
  });

  test("a tunnel is closed at its session's absolute expiry", async () => {
    const { app, signIn, upstream } = testApp({}, { session: { absoluteMs: 200 } });
    const { cookie } = signIn("alice");
    upstream.upgradeReply = () => [
      ["upgrade", "websocket"],
      ["sec-websocket-accept", accept],
    ];
    const d = await app.upgrade(upgradeReq(wsHeaders(cookie)));
    assert.equal(d.kind, "tunnel");
    if (d.kind !== "tunnel") return;
    app.track(d.session, [d.socket]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(d.socket.destroyed, false);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(d.socket.destroyed, true);
    assert.equal(app.tunnels.size, 0);
  });
});
