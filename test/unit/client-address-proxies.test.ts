// Red team RT-B F3: a trusted proxy that writes X-Forwarded-For entries with a port (Azure
// Application Gateway: "203.0.113.5:4711", "[2001:db8::5]:4711") or "unknown" (Squid with
// forwarded_for off, nginx with a unix-socket peer) must not make the proxy itself everybody's
// address: one client's failures would ban every client, silently.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UNKNOWN_CLIENT, clientAddress, isUnknownClientKey, parseTrustedProxies, unknownClientKey } from "../../src/core/web/client-address.js";
import { DEFAULT_REGULATION, Regulator, attemptAddress } from "../../src/core/web/regulation.js";
import { appRequest, testApp } from "../helpers/gateway-app.js";

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;
const cookieOf = (setCookie: string) => setCookie.split(";")[0]!;

test("a trusted hop's entry with a port counts as its address (the port is dropped, as nginx realip and HAProxy do)", () => {
  const trusted = parseTrustedProxies(["10.0.0.2"]);
  const cases: [string, string, string][] = [
    ["203.0.113.5:4711", "203.0.113.5", "203.0.113.5, 10.0.0.2"],
    ["[2001:db8::5]:4711", "2001:db8::5", "2001:db8::5, 10.0.0.2"],
    ["[2001:DB8:0::5]", "2001:db8::5", "2001:db8::5, 10.0.0.2"],
    ["6.6.6.6, 203.0.113.5:1", "203.0.113.5", "203.0.113.5, 10.0.0.2"],
    [" 203.0.113.5:65535 ", "203.0.113.5", "203.0.113.5, 10.0.0.2"],
  ];
  for (const [xff, address, chain] of cases) assert.deepEqual(clientAddress("10.0.0.2", [xff], trusted), { address, forwardedFor: chain, known: true }, xff);
  // The port form is only a port: the walk still goes on through trusted hops and stops at the first untrusted one.
  assert.deepEqual(clientAddress("10.0.0.2", ["6.6.6.6, 198.51.100.4:80, 10.0.0.2:443"], trusted), { address: "198.51.100.4", forwardedFor: "198.51.100.4, 10.0.0.2, 10.0.0.2", known: true });
});

test("a trusted hop's entry that is not an address: the client is unknown, never the proxy", () => {
  const trusted = parseTrustedProxies(["10.0.0.2", "10.0.0.3"]);
  for (const g of ["unknown", "", "_hidden", "evil.example", "203.0.113.5:0", "203.0.113.5:65536", "203.0.113.5:", "2001:db8::5:4711x", "[2001:db8::5]x", "1.2.3.4 5.6.7.8", "[1.2.3.4]:80"]) {
    const r = clientAddress("10.0.0.2", [`6.6.6.6, ${g}`], trusted);
    assert.equal(r.address, UNKNOWN_CLIENT, JSON.stringify(g));
    assert.equal(r.known, false, JSON.stringify(g));
    assert.notEqual(r.address, "10.0.0.2", JSON.stringify(g));
    assert.equal(r.forwardedFor, "unknown, 10.0.0.2", JSON.stringify(g));
    // Written by the second trusted hop: still unknown, not that hop.
    assert.equal(clientAddress("10.0.0.2", [`${g}, 10.0.0.3`], trusted).address, UNKNOWN_CLIENT, JSON.stringify(g));
  }
  // Garbage a client wrote (left of the first untrusted address) is never reached.
  assert.deepEqual(clientAddress("10.0.0.2", ["unknown, 198.51.100.4"], trusted), { address: "198.51.100.4", forwardedFor: "198.51.100.4, 10.0.0.2", known: true });
});

test("an unknown client's attempts are counted under a key of their own per request, which can ban nobody else", () => {
  assert.equal(attemptAddress(unknownClientKey(1)), "unknown-1");
  assert.notEqual(attemptAddress(unknownClientKey(1)), attemptAddress(unknownClientKey(2)));
  assert.equal(isUnknownClientKey(unknownClientKey(7)), true);
  for (const k of ["unknown", "unknown-", "unknown-x", "unknown-1 ", "203.0.113.5"]) assert.equal(isUnknownClientKey(k), false, k);
  assert.equal(attemptAddress("unknown"), "unknown", "a peer with no address at all is still one shared key");
});

async function malformedForm(app: ReturnType<typeof testApp>["app"], xff: string | null) {
  const headers: [string, string][] = xff === null ? [] : [["x-forwarded-for", xff]];
  const page = await appRequest(app, "/_otpgate/login?rd=/", { remoteAddress: "10.0.0.2", headers });
  const body = new URLSearchParams({ csrf: csrfOf(page.text), rd: "/", user: "x", code: "x" }).toString();
  return appRequest(app, "/_otpgate/login", {
    method: "POST",
    remoteAddress: "10.0.0.2",
    headers: [...headers, ["cookie", cookieOf(page.header("set-cookie")!)], ["content-type", "application/x-www-form-urlencoded"]],
    body,
  });
}

test("in the app: one client's failures through a proxy that writes ports ban that client, not everybody behind the proxy", async () => {
  const { app, logs } = testApp({ trusted_proxies: ["10.0.0.2"] });
  for (let i = 0; i < 6; i++) await malformedForm(app, "203.0.113.5:4711");
  const attacker = logs.filter((l) => l.event === "login");
  assert.equal(attacker.at(-1)!.ip, "203.0.113.5");
  assert.equal(attacker.at(-1)!.banned, "address");
  await malformedForm(app, "198.51.100.7:5555");
  const other = logs.filter((l) => l.event === "login").at(-1)!;
  assert.equal(other.ip, "198.51.100.7");
  assert.equal(other.reason, "malformed", "another client behind the same proxy is not banned");
});

test("in the app: entries the proxy wrote as 'unknown' count per request, and the admin is warned (at most once a minute)", async () => {
  const { app, logs, clock } = testApp({ trusted_proxies: ["10.0.0.2"] });
  for (let i = 0; i < 8; i++) await malformedForm(app, "unknown");
  const logins = logs.filter((l) => l.event === "login");
  assert.equal(logins.length, 8);
  for (const l of logins) {
    assert.equal(l.reason, "malformed", "nobody is banned");
    assert.match(String(l.ip), /^unknown-[0-9]+$/);
    assert.equal(l.banned, undefined);
  }
  assert.equal(new Set(logins.map((l) => l.ip)).size, 8, "a key per request");
  const warnings = logs.filter((l) => l.event === "warning" && l.where === "forwarded");
  assert.equal(warnings.length, 1, "rate-limited");
  assert.match(String(warnings[0]!.message), /X-Forwarded-For entry "unknown" written by 10\.0\.0\.2, a trusted proxy, is not an address/);
  clock.now += 61_000;
  await malformedForm(app, "unknown");
  const again = logs.filter((l) => l.event === "warning" && l.where === "forwarded");
  assert.equal(again.length, 2);
  assert.match(String(again[1]!.message), /\(16 such request\(s\) since the last warning\)/);
});

test("in the app: a trusted proxy that sends no X-Forwarded-For is warned about (rate-limited): every client would be the proxy", async () => {
  const { app, logs, clock } = testApp({ trusted_proxies: ["10.0.0.2"] });
  await appRequest(app, "/healthz", { remoteAddress: "10.0.0.2" });
  assert.deepEqual(
    logs.filter((l) => l.event === "warning"),
    [],
    "the load balancer's own health check is not a mistake",
  );
  await appRequest(app, "/_otpgate/login?rd=/", { remoteAddress: "10.0.0.2" });
  await appRequest(app, "/_otpgate/login?rd=/", { remoteAddress: "10.0.0.2" });
  let warnings = logs.filter((l) => l.event === "warning" && l.where === "forwarded");
  assert.equal(warnings.length, 1);
  assert.match(String(warnings[0]!.message), /10\.0\.0\.2 is in trusted_proxies but sent no X-Forwarded-For/);
  // A client that is not a trusted proxy sending none is normal: no warning.
  clock.now += 61_000;
  await appRequest(app, "/_otpgate/login?rd=/", { remoteAddress: "198.51.100.7" });
  warnings = logs.filter((l) => l.event === "warning" && l.where === "forwarded");
  assert.equal(warnings.length, 1);
});

test("in the app: what the app is told about a client the proxy named with a port, and about an unknown one", async () => {
  const { app, upstream, signIn } = testApp({ trusted_proxies: ["10.0.0.2"] });
  const { cookie } = signIn("alice");
  for (const [xff, realIp, chain] of [
    ["203.0.113.5:4711", "203.0.113.5", "203.0.113.5, 10.0.0.2"],
    ["unknown", "unknown", "unknown, 10.0.0.2"],
  ] as const) {
    const r = await appRequest(app, "/reports", { remoteAddress: "10.0.0.2", headers: { cookie, "x-forwarded-for": xff } });
    assert.equal(r.status, 200, xff);
    const seen = upstream.seen.at(-1)!.req.headers;
    assert.deepEqual(
      seen.filter(([n]) => n === "x-real-ip").map(([, v]) => v),
      [realIp],
      xff,
    );
    assert.deepEqual(
      seen.filter(([n]) => n === "x-forwarded-for").map(([, v]) => v),
      [chain],
      xff,
    );
  }
});

// RT-C F3: per-request keys are never seen again, so counting them only filled the regulator's
// table: 100,000 malformed forms from ONE client behind a proxy writing "unknown" evicted every ban.
test("an unknown client's failures take no room in the regulator, so they cannot push bans out", () => {
  const reg = new Regulator({ ...DEFAULT_REGULATION, maxEntries: 1000 });
  const now = 5_000_000;
  for (let i = 0; i < 6; i++) reg.failAddress("198.51.100.66", now);
  for (let i = 0; i < 6; i++) reg.fail({ subject: "user:alice", address: "203.0.113.9" }, now);
  assert.equal(reg.admitAddress("198.51.100.66", now).kind, "banned");
  assert.equal(reg.admit({ subject: "user:alice", address: "203.0.113.9" }, now).kind, "banned");
  const before = reg.size;
  for (let n = 1; n <= 5000; n++) {
    reg.failAddress(attemptAddress(unknownClientKey(n)), now + 1);
    reg.fail({ subject: "user:bob", address: attemptAddress(unknownClientKey(100_000 + n)) }, now + 1);
  }
  assert.equal(reg.size, before + 1, "only bob's slow-down was added");
  assert.equal(reg.admitAddress("198.51.100.66", now + 2).kind, "banned", "the address ban is still there");
  assert.equal(reg.admit({ subject: "user:alice", address: "203.0.113.9" }, now + 2).kind, "banned", "the pair ban is still there");
  assert.ok(reg.delayOf("user:bob", now + 2) > 0, "bob's guesses from unknown clients still slow bob down");
});
