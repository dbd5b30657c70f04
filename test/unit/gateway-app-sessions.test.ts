// Sessions through the gateway app in-process (fixed clock, in-memory keys and store): purpose-bound
// tokens cannot stand in for one another, log out everywhere and a new secret end sessions and
// their tunnels, and behind https the __Host- cookies are the ones read and none reaches the app.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { appRequest, testApp } from "../helpers/gateway-app.js";

const key = "dGhlIHNhbXBsZSBub25jZQ==";
const accept = createHash("sha1")
  .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
  .digest("base64");
const wsReq = (cookie: string) => ({
  method: "GET",
  target: "/socket",
  headers: [
    ["host", "app.test"],
    ["cookie", cookie],
    ["connection", "Upgrade"],
    ["upgrade", "websocket"],
    ["sec-websocket-key", key],
    ["sec-websocket-version", "13"],
  ] as [string, string][],
  remoteAddress: "192.0.2.10",
  body: null,
});
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;

describe("gateway app: sessions that stay ended", () => {
  test("a CSRF token or an enrollment draft is never a session, and a session cookie is never a CSRF token", async () => {
    const { app, sessions, signIn, upstream } = testApp();
    const page = await appRequest(app, "/_otpgate/login");
    const csrfCookie = page.header("set-cookie")!.split(";")[0]!;
    const csrf = csrfOf(page.text);
    assert.match(csrf, /^v1\.1\./, "CSRF tokens carry the key id");
    for (const forged of [csrf, sessions.keys().seal("enroll-draft", { sid: "A".repeat(24), user: "alice", createdAt: 1_800_000_000_000, lastSeenAt: 1_800_000_000_000, fp: "x" })]) {
      assert.equal((await appRequest(app, "/x", { headers: { cookie: `otpgate_session=${forged}` } })).status, 302);
      assert.equal((await appRequest(app, "/_otpgate/auth", { headers: { cookie: `otpgate_session=${forged}` } })).status, 401);
    }
    // The session cookie's value given as the form's CSRF token: refused.
    const { cookie } = signIn("alice");
    const out = await appRequest(app, "/_otpgate/logout", {
      method: "POST",
      headers: { cookie: `${cookie}; ${csrfCookie}`, "content-type": "application/x-www-form-urlencoded" },
      body: `csrf=${cookie.split("=")[1]}`,
    });
    assert.equal(out.status, 403);
    assert.equal(upstream.seen.length, 0);
  });

  test("log out everywhere ends every session of the user and closes their tunnels at once; other users keep theirs", async () => {
    const { app, sessions, signIn, upstream, clock } = testApp();
    const a1 = signIn("alice");
    const a2 = signIn("alice");
    const bob = signIn("bob");
    upstream.upgradeReply = () => [
      ["upgrade", "websocket"],
      ["sec-websocket-accept", accept],
    ];
    const tunnels = [];
    for (const c of [a1.cookie, bob.cookie]) {
      const d = await app.upgrade(wsReq(c));
      assert.equal(d.kind, "tunnel");
      if (d.kind !== "tunnel") return;
      app.track(d.session, [d.socket]);
      tunnels.push(d.socket);
    }
    clock.now += 1000;
    sessions.revokeUser("alice", clock.now);
    assert.equal(tunnels[0]!.destroyed, true, "alice's tunnel closed");
    assert.equal(tunnels[1]!.destroyed, false, "bob's tunnel open");
    for (const c of [a1.cookie, a2.cookie]) assert.equal((await appRequest(app, "/x", { headers: { cookie: c } })).status, 302);
    assert.equal((await appRequest(app, "/x", { headers: { cookie: bob.cookie } })).status, 200);
    clock.now += 1;
    const again = signIn("alice");
    assert.equal((await appRequest(app, "/x", { headers: { cookie: again.cookie } })).status, 200, "a new sign-in works");
  });

  test("a new secret ends the session (and its tunnel) at the first request after session.recheck", async () => {
    const { app, sessions, signIn, upstream, clock, secrets, config } = testApp();
    const alice = signIn("alice");
    upstream.upgradeReply = () => [
      ["upgrade", "websocket"],
      ["sec-websocket-accept", accept],
    ];
    const d = await app.upgrade(wsReq(alice.cookie));
    if (d.kind !== "tunnel") throw new Error("no tunnel");
    app.track(d.session, [d.socket]);
    secrets.set("alice", "ANOTHER-SECRET");
    clock.now += config.session.recheckMs - 1;
    assert.equal((await appRequest(app, "/x", { headers: { cookie: alice.cookie } })).status, 200, "not checked yet");
    await sessions.flush();
    clock.now += 2;
    assert.equal((await appRequest(app, "/x", { headers: { cookie: alice.cookie } })).status, 200, "this request starts the check");
    await sessions.flush();
    assert.equal((await appRequest(app, "/x", { headers: { cookie: alice.cookie } })).status, 302, "ended");
    assert.equal(d.socket.destroyed, true, "and its tunnel closed");
  });

  test("behind https: __Host- cookies; the plain name is not read; neither reaches the app", async () => {
    const { app, sessions, signIn, upstream, clock } = testApp({ public_url: "https://app.test" });
    const page = await appRequest(app, "/_otpgate/login");
    assert.match(page.header("set-cookie")!, /^__Host-otpgate_csrf=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    const value = signIn("alice").cookie.split("=").slice(1).join("=");
    assert.equal((await appRequest(app, "/x", { headers: { cookie: `otpgate_session=${value}` } })).status, 302, "a plain-named (tossable) cookie is not a session");
    const ok = await appRequest(app, "/x", { headers: { cookie: `__Host-otpgate_session=${value}; otpgate_session=x; otpgate_csrf=y; __Host-otpgate_csrf=z; app=1` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(
      upstream.seen.at(-1)!.req.headers.filter(([n]) => n === "cookie"),
      [["cookie", "app=1"]],
      "only the app's own cookie",
    );
    const logout = await appRequest(app, "/_otpgate/logout", { headers: { cookie: `__Host-otpgate_session=${value}` } });
    const csrfCookie = logout.header("set-cookie")!.split(";")[0]!;
    const out = await appRequest(app, "/_otpgate/logout", {
      method: "POST",
      headers: { cookie: `__Host-otpgate_session=${value}; ${csrfCookie}`, "content-type": "application/x-www-form-urlencoded" },
      body: `csrf=${csrfOf(logout.text)}`,
    });
    assert.equal(out.status, 303);
    assert.match(out.header("set-cookie")!, /^__Host-otpgate_session=; Max-Age=0; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    assert.equal(sessions.open(value, clock.now), null);
  });
});

// Red team 1, F5: a WebSocket tunnel outlived its session: past the idle timeout (HTTP got 302,
// the tunnel stayed), after a new secret (the fingerprint was only checked when an HTTP request
// used the session) and after key retirement. Every tunnel re-checks its session every
// session.recheck: tunnel traffic counts as activity, a silent tunnel past idle closes.
describe("gateway app: tunnels re-check their session (F5)", () => {
  const open = async (t: ReturnType<typeof testApp>, cookie: string) => {
    t.upstream.upgradeReply = () => [
      ["upgrade", "websocket"],
      ["sec-websocket-accept", accept],
    ];
    const d = await t.app.upgrade(wsReq(cookie));
    if (d.kind !== "tunnel") throw new Error("no tunnel");
    t.app.track(d.session, [d.socket]);
    return d.socket;
  };

  test("a silent tunnel closes once the session is idle; one with traffic stays and keeps its session alive", async () => {
    const t = testApp();
    const silent = await open(t, t.signIn("alice").cookie);
    const bob = t.signIn("bob");
    const busy = await open(t, bob.cookie);
    const step = t.config.session.recheckMs;
    for (let at = 0; at <= t.config.session.idleMs + step; at += step) {
      t.clock.now += step;
      busy.push(Buffer.from("x")); // traffic from the app through bob's tunnel
      await new Promise((r) => setImmediate(r));
      t.app.recheckTunnels();
      await t.sessions.flush();
    }
    assert.equal(silent.destroyed, true, "the silent tunnel closed after idle");
    assert.equal(busy.destroyed, false, "the busy tunnel stays");
    assert.equal((await appRequest(t.app, "/x", { headers: { cookie: bob.cookie } })).status, 200, "tunnel traffic kept bob's session alive");
  });

  test("a new secret closes the tunnel within session.recheck without any HTTP request", async () => {
    const t = testApp();
    const socket = await open(t, t.signIn("alice").cookie);
    t.secrets.set("alice", "ANOTHER-SECRET");
    t.clock.now += t.config.session.recheckMs + 1;
    t.app.recheckTunnels();
    await t.sessions.flush();
    assert.equal(socket.destroyed, true);
  });

  test("the re-check runs by itself every session.recheck", async () => {
    const t = testApp({}, { session: { recheckMs: 20 } });
    const socket = await open(t, t.signIn("alice").cookie);
    t.clock.now += t.config.session.idleMs + 1;
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(socket.destroyed, true);
    t.app.tunnels.closeTunnels(() => true);
  });
});
