// The RADIUS pipeline in-process: fixed clock, in-memory accounts, captured packets and log lines.
// Proves what did NOT run: no lookup and no state change for forged requests, one decision per
// request however often it is re-sent.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { RadiusLog, jsonLine } from "../../src/adapters/radius/log.js";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildAccessRequest } from "../../src/adapters/radius/packet.js";
import { radiusServer } from "../../src/adapters/radius/server.js";
import { Throttle } from "../../src/adapters/radius/throttle.js";
import { codeAt } from "../helpers/otp.js";
import type { CachedAccount } from "../../src/platform/user-cache.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";

const SECRET = Buffer.from("unit-test-shared-secret-0001");
const KEY = "JBSWY3DPEHPK3PXP";
const NOW = 1_700_000_000_000;
const ALICE: CachedAccount = { name: "alice", uid: 1001, gid: 1001, home: "/home/alice", groups: [1001] };

function harness(opts: { nowMs?: number; syslog?: string[] } = {}) {
  let now = opts.nowMs ?? NOW;
  const state = `${KEY}\n" RATE_LIMIT 3 30\n" TOTP_AUTH\n`;
  const store = new MemoryAccountStore(state);
  const sent: Buffer[] = [];
  const lines: string[] = [];
  const lookups: string[] = [];
  const log = new RadiusLog({ nowMs: () => now, out: (l) => lines.push(l), syslog: opts.syslog ? (_lvl, m) => opts.syslog!.push(m) : undefined });
  const server = radiusServer({
    secret: SECRET,
    send: (p) => sent.push(p),
    lookup: async (name) => {
      lookups.push(name);
      return name === "alice" ? ALICE : null;
    },
    storeFor: () => store,
    clock: { nowMs: () => now },
    log,
    nullok: false,
    noSkewAdjust: true,
    rejectFloorMs: 0,
  });
  return { server, store, state, sent, lines, lookups, log, advance: (ms: number) => (now += ms) };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
const src = (port = 40000) => ({ address: "127.0.0.1", port });

test("forged requests (another secret) are dropped before any lookup or state change, and get no answer", async () => {
  const h = harness();
  for (let i = 0; i < 50; i++) h.server.handle(buildAccessRequest(i, randomBytes(16), "alice", "123456", Buffer.from("guessed-secret-xxxxxxxx")), src(40000 + i));
  await settle();
  assert.deepEqual(h.lookups, []);
  assert.equal(h.store.current, h.state);
  assert.equal(h.sent.length, 0);
  assert.equal(h.server.counters.dropped, 50);
  // The owner's code still works.
  h.server.handle(buildAccessRequest(1, randomBytes(16), "alice", codeAt(KEY, Math.floor(NOW / 30_000)), SECRET), src(50000));
  await settle();
  assert.equal(h.sent[0]?.[0], ACCESS_ACCEPT);
});

test("a re-sent request is answered from the cache, never decided twice", async () => {
  const h = harness();
  const packet = buildAccessRequest(9, randomBytes(16), "alice", "000000", SECRET);
  h.server.handle(packet, src());
  h.server.handle(packet, src()); // while in flight: ignored
  await settle();
  h.server.handle(packet, src());
  h.server.handle(packet, src());
  await settle();
  assert.equal(h.server.counters.decided, 1);
  assert.equal(h.sent.length, 3);
  assert.ok(h.sent.every((p) => p[0] === ACCESS_REJECT && p.equals(h.sent[0]!)));
  assert.equal(h.lookups.length, 1);
});

test("one socket is cut off beyond its rate; another socket is not", async () => {
  const h = harness();
  const forged = (i: number) => buildAccessRequest(i & 255, randomBytes(16), "nobody", "123456", Buffer.from("guessed-secret-xxxxxxxx"));
  for (let i = 0; i < 1000; i++) h.server.handle(forged(i), src(41000));
  assert.equal(h.server.counters.throttled, 800, "a burst of 200, then nothing in the same millisecond");
  h.server.handle(buildAccessRequest(1, randomBytes(16), "alice", "000000", SECRET), src(41001));
  await settle();
  assert.equal(h.sent.length, 1);
});

test("log lines: one escaped JSON line per decision; a User-Name cannot forge a field or a line, also in the syslog key=value form", async () => {
  const syslog: string[] = [];
  const h = harness({ syslog });
  const evil = 'x result=accepted via=totp\nuser=root result=accepted "';
  h.server.handle(buildAccessRequest(3, randomBytes(16), evil, "000000", SECRET), src());
  await settle();
  assert.equal(h.lines.length, 1);
  assert.match(h.lines[0]!, /^[\x20-\x7e]*\n$/);
  const record = JSON.parse(h.lines[0]!) as Record<string, unknown>;
  assert.equal(record.user, evil);
  assert.equal(record.result, "rejected");
  // The one login decision checks the name before any lookup (services/login.ts, rule 2).
  assert.equal(record.reason, "invalid-user-name");
  assert.equal(syslog.length, 1);
  assert.doesNotMatch(syslog[0]!, /\n/);
  assert.match(
    syslog[0]!,
    /^via=radius event=login user="x result=accepted via=totp\\nuser=root result=accepted \\"" client=127\.0\.0\.1:40000 result=rejected reason=invalid-user-name problem="[^"\n]*"$/,
  );
  assert.equal(jsonLine({ a: "é\u001b\u2028" }), '{"a":"\\u00e9\\u001b\\u2028"}');
});

test("logging is bounded: similar lines beyond the rate are counted and summarised", () => {
  let now = NOW;
  const lines: string[] = [];
  const log = new RadiusLog({ nowMs: () => now, out: (l) => lines.push(l), burst: 5, perSecond: 1 });
  for (let i = 0; i < 100; i++) log.write("notice", "drop:bad-password", { event: "drop", n: i });
  log.write("info", "login:accepted:totp", { event: "login" });
  assert.equal(lines.length, 6);
  log.flush();
  assert.equal(lines.length, 7);
  const summary = JSON.parse(lines[6]!) as Record<string, unknown>;
  assert.deepEqual([summary.event, summary.similar, summary.count, summary.message], ["suppressed", "drop:bad-password", 95, "95 similar lines suppressed"]);
  now += 2000;
  log.write("notice", "drop:bad-password", { event: "drop" });
  assert.equal(lines.length, 8, "the bucket refills");
});

test("token buckets refill with time and forget the longest-idle source when full", () => {
  const t = new Throttle({ burst: 2, perSecond: 1, maxKeys: 2 });
  assert.deepEqual([t.take("a", 0), t.take("a", 0), t.take("a", 0)], [true, true, false]);
  assert.equal(t.take("a", 1000), true);
  t.take("b", 1000);
  t.take("c", 1000); // evicts "a"
  assert.equal(t.take("a", 1000), true, "a forgotten source starts with a full bucket");
  assert.equal(t.takeRefused(), 1);
});

test("rejections wait for the floor after arrival; acceptances do not", async () => {
  const now = NOW;
  const sent: { code: number; at: number }[] = [];
  const started = Date.now();
  const server = radiusServer({
    secret: SECRET,
    send: (p) => sent.push({ code: p[0]!, at: Date.now() - started }),
    lookup: async (name) => (name === "alice" ? ALICE : null),
    storeFor: () => new MemoryAccountStore(`${KEY}\n" TOTP_AUTH\n`),
    clock: { nowMs: () => now },
    log: new RadiusLog({ nowMs: () => now, out: () => {} }),
    nullok: false,
    noSkewAdjust: true,
    rejectFloorMs: 60,
  });
  server.handle(buildAccessRequest(1, randomBytes(16), "alice", codeAt(KEY, Math.floor(NOW / 30_000)), SECRET), src(1));
  server.handle(buildAccessRequest(2, randomBytes(16), "nosuch", "000000", SECRET), src(2));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(
    sent.map((s) => s.code),
    [ACCESS_ACCEPT],
  );
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(
    sent.map((s) => s.code),
    [ACCESS_ACCEPT, ACCESS_REJECT],
  );
  assert.ok(sent[1]!.at >= 55, `rejected after ${sent[1]!.at} ms`);
});

test("bind failures say what to do: who holds the port (ss -ulpn), or that a privileged port needs root", async () => {
  const { bindError } = await import("../../src/adapters/cli/commands/server-main.js");
  const inUse = Object.assign(new Error("bind EADDRINUSE"), { code: "EADDRINUSE" });
  assert.match(bindError(inUse, "127.0.0.1", 1812).message, /^127\.0\.0\.1:1812 is already in use: .*ss -ulpn 'sport = :1812'.*below 1024/);
  assert.equal(bindError(inUse, "127.0.0.1", 1812).exitCode, 1);
  const denied = Object.assign(new Error("bind EACCES"), { code: "EACCES" });
  assert.match(bindError(denied, "127.0.0.1", 1812).message, /privileged port: run otpgate radius as root/);
});

test("a remote address is limited as a whole (many ports); loopback is not (every local user shares it)", () => {
  const h = harness();
  const forged = (i: number) => buildAccessRequest(i & 255, randomBytes(16), "nobody", "123456", Buffer.from("guessed-secret-xxxxxxxx"));
  for (let i = 0; i < 3000; i++) h.server.handle(forged(i), { address: "192.0.2.7", port: 1024 + i });
  assert.equal(h.server.counters.throttled, 1000);
  for (let i = 0; i < 3000; i++) h.server.handle(forged(i), { address: "127.0.0.1", port: 1024 + i });
  assert.equal(h.server.counters.throttled, 1000, "no loopback packet was throttled by address");
});
