// Red team 2 (issue 9), on the proxy path in-process: F3, a WebSocket upgrade in flight while its
// session ends (logout, log out everywhere, a retired key) is refused once the app's 101 arrives and
// both sides are closed; F4, a user's tunnels are bounded (limits.tunnels_per_user: 503 beyond,
// nothing reaches the app) and counted in /metrics; F5, an app answer that fails after its head is
// logged once and counted.
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
const ok101: [string, string][] = [
  ["upgrade", "websocket"],
  ["sec-websocket-accept", accept],
];

describe("gateway app: an upgrade in flight while its session ends (red team 2, F3)", () => {
  for (const [what, end] of [
    ["logout (revoke)", (t: ReturnType<typeof testApp>, sid: string) => t.sessions.revoke({ sid, user: "alice", createdAt: t.clock.now, lastSeenAt: t.clock.now }, t.clock.now)],
    ["log out everywhere", (t: ReturnType<typeof testApp>) => t.sessions.revokeUser("alice", t.clock.now)],
  ] as const) {
    test(`${what} while the app's 101 is on its way: refused, the app's socket closed, no tunnel`, async () => {
      const t = testApp();
      const alice = t.signIn("alice");
      t.upstream.upgradeReply = () => {
        end(t, alice.sid); // the session ends after the gateway's check, before the app's 101 arrives
        return ok101;
      };
      const d = await t.app.upgrade(wsReq(alice.cookie));
      assert.deepEqual(d, { kind: "refused", status: 401 });
      assert.equal(t.upstream.upgrades.at(-1)!.socket.destroyed, true, "the app's side is closed");
      assert.equal(t.app.tunnels.size, 0);
    });
  }

  test("track() of a session that ended after upgrade() decided: refused and both sockets destroyed", async () => {
    const t = testApp();
    const alice = t.signIn("alice");
    t.upstream.upgradeReply = () => ok101;
    const d = await t.app.upgrade(wsReq(alice.cookie));
    assert.equal(d.kind, "tunnel");
    if (d.kind !== "tunnel") return;
    t.sessions.revoke(d.session, t.clock.now);
    const client = new (await import("../helpers/gateway-app.js")).FakeSocket();
    assert.equal(t.app.track(d.session, [client, d.socket]), false);
    assert.equal(client.destroyed, true);
    assert.equal(d.socket.destroyed, true);
    assert.equal(t.app.tunnels.size, 0);
  });

  test("a session still valid gets its tunnel (the check refuses only ended sessions)", async () => {
    const t = testApp();
    const alice = t.signIn("alice");
    t.upstream.upgradeReply = () => ok101;
    const d = await t.app.upgrade(wsReq(alice.cookie));
    assert.equal(d.kind, "tunnel");
    if (d.kind !== "tunnel") return;
    assert.equal(t.app.track(d.session, [d.socket]), true);
    assert.equal(t.app.tunnels.size, 1);
    t.app.tunnels.closeTunnels(() => true);
  });
});

describe("gateway app: tunnels per user (red team 2, F4)", () => {
  test("limits.tunnels_per_user: beyond it 503 and nothing reaches the app; a closed tunnel frees its place; other users unaffected; /metrics counts open tunnels", async () => {
    const t = testApp({}, { limits: { tunnelsPerUser: 2 } });
    const alice = t.signIn("alice");
    const bob = t.signIn("bob");
    t.upstream.upgradeReply = () => ok101;
    const open = async (cookie: string) => {
      const d = await t.app.upgrade(wsReq(cookie));
      if (d.kind === "tunnel") t.app.track(d.session, [d.socket]);
      return d;
    };
    const a1 = await open(alice.cookie);
    const a2 = await open(alice.cookie);
    assert.equal(a1.kind, "tunnel");
    assert.equal(a2.kind, "tunnel");
    const reached = t.upstream.upgrades.length;
    assert.deepEqual(await open(alice.cookie), { kind: "refused", status: 503 });
    assert.equal(t.upstream.upgrades.length, reached, "the refused upgrade never reached the app");
    assert.ok(t.logs.some((e) => e.event === "upstream" && e.result === "tunnels-busy" && e.user === "alice"));
    assert.equal((await open(bob.cookie)).kind, "tunnel", "bob has places of his own");
    assert.match(t.app.metricsText(), /^otpgate_tunnels_open 3$/m);
    assert.match(t.app.metricsText(), /^# TYPE otpgate_tunnels_open gauge$/m);
    if (a1.kind === "tunnel") a1.socket.destroy();
    await new Promise((r) => setImmediate(r));
    assert.equal((await open(alice.cookie)).kind, "tunnel", "a closed tunnel gives its place back");
    assert.match(t.app.metricsText(), /^otpgate_tunnels_open 3$/m);
    t.app.tunnels.closeTunnels(() => true);
    await new Promise((r) => setImmediate(r));
    assert.match(t.app.metricsText(), /^otpgate_tunnels_open 0$/m);
  });

  test("an upgrade the app refuses or fails gives its place back", async () => {
    const t = testApp({}, { limits: { tunnelsPerUser: 1 } });
    const alice = t.signIn("alice");
    t.upstream.upgradeReply = () => new Error("app down");
    assert.deepEqual(await t.app.upgrade(wsReq(alice.cookie)), { kind: "refused", status: 502 });
    t.upstream.upgradeReply = () => [["upgrade", "h2c"]];
    assert.deepEqual(await t.app.upgrade(wsReq(alice.cookie)), { kind: "refused", status: 502 });
    await new Promise((r) => setImmediate(r));
    t.upstream.upgradeReply = () => ok101;
    assert.equal((await t.app.upgrade(wsReq(alice.cookie))).kind, "tunnel");
  });
});

describe("gateway app: an app answer that fails after its head (red team 2, F5)", () => {
  test("logged once (no secrets) and counted in upstream_errors; a client going away is not an error", async () => {
    const t = testApp();
    const alice = t.signIn("alice");
    t.upstream.reply = () => ({
      status: 204,
      headers: [["content-length", "40"]],
      body: (async function* () {
        yield new TextEncoder().encode("x");
        throw Object.assign(new Error("Response body length does not match content-length header"), { code: "UND_ERR_RES_CONTENT_LENGTH_MISMATCH" });
      })(),
    });
    await assert.rejects(appRequest(t.app, "/x", { headers: { cookie: alice.cookie } }), /content-length/);
    const lines = t.logs.filter((e) => e.event === "upstream" && e.phase === "body");
    assert.equal(lines.length, 1, JSON.stringify(t.logs));
    assert.equal(lines[0]!.result, "error");
    assert.equal(lines[0]!.user, "alice");
    assert.match(String(lines[0]!.message), /content-length/);
    assert.ok(!JSON.stringify(lines).includes(alice.cookie.split("=")[1]!), "no session token in the log");
    assert.equal(t.app.metrics.upstream_errors, 1);
    assert.match(t.app.metricsText(), /^otpgate_upstream_errors_total 1$/m);
  });
});

describe("gateway app: a streamed app body that fails after its head (the shell's pipeTo path, F5)", () => {
  const streamed = (error: Error) => {
    const body = {
      pipeTo(sink: { write(c: Uint8Array): boolean; destroy(e?: Error): void }) {
        sink.write(new TextEncoder().encode("x"));
        sink.destroy(error);
      },
      cancel() {},
      async *[Symbol.asyncIterator]() {},
    };
    return body;
  };
  const sink = () => {
    const s = { destroyed: null as Error | null, write: () => true, end: () => undefined, destroy: (e?: Error) => void (s.destroyed = e ?? new Error("destroyed")), once: () => undefined };
    return s;
  };
  for (const [what, error, counted] of [
    ["a content-length mismatch", Object.assign(new Error("Response body length does not match content-length header"), { code: "UND_ERR_RES_CONTENT_LENGTH_MISMATCH" }), true],
    ["the client going away (ClientGone)", Object.assign(new Error("the client went away before the app's answer was complete"), { name: "ClientGone" }), false],
  ] as const) {
    test(`${what}: ${counted ? "logged and counted" : "neither logged nor counted"}; the client's response is destroyed either way`, async () => {
      const t = testApp();
      const alice = t.signIn("alice");
      t.upstream.reply = () => ({ status: 200, headers: [["content-length", "40"]], body: streamed(error) as never });
      const res = await t.app.handle({
        method: "GET",
        target: "/x",
        headers: [
          ["host", "app.test"],
          ["cookie", alice.cookie],
        ],
        remoteAddress: "192.0.2.10",
        body: null,
      });
      const s = sink();
      (res.body as unknown as { pipeTo(s: unknown): void }).pipeTo(s);
      assert.equal(s.destroyed, error);
      assert.equal(t.logs.filter((e) => e.event === "upstream" && e.phase === "body").length, counted ? 1 : 0);
      assert.equal(t.app.metrics.upstream_errors, counted ? 1 : 0);
    });
  }
});
