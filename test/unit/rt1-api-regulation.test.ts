// Red team rt1, note (d): /v1/decide with rateLimit "ignore" skips the state file's RATE_LIMIT,
// so any member of the socket group (a compromised gateway) could guess codes without limit (600
// wrong codes in 3.4 s). The decision service now regulates such decides per user across all
// client addresses (core/web/regulation.ts). In-process, fixed clock, a memory store.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { localDecisionService, type PeekableStore, type ServiceAccount } from "../../src/adapters/server/decisions.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import type { DecideReply } from "../../src/ports/decision-service.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const T0 = 1_700_000_010_000;

function base32Decode(s: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(nowMs: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(nowMs / 30_000)));
  const mac = createHmac("sha1", base32Decode(SECRET)).update(counter).digest();
  const o = mac[mac.length - 1]! & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, "0");
}

function rig() {
  let now = T0;
  const store = Object.assign(new MemoryAccountStore(`${SECRET}\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n`), { path: "memory", peek: () => null }) as unknown as PeekableStore;
  const logs: string[] = [];
  const service = localDecisionService<ServiceAccount>({
    lookup: async (name) => (name === "alice" ? { name, uid: 4242, gid: 4242 } : null),
    storeFor: () => store,
    clock: { nowMs: () => now },
    macFactory: nodeMacFactory,
    factors: { requirePublickey: false, nullok: false, noSkewAdjust: true, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false },
    serverKey: Buffer.alloc(32),
    invitesDir: "/nonexistent",
    log: (_level, kind) => logs.push(kind),
  });
  return { service, logs, advance: (ms: number) => (now += ms), now: () => now };
}

function wrongCode(nowMs: number, i: number): string {
  const right = new Set([totp(nowMs - 30_000), totp(nowMs), totp(nowMs + 30_000)]);
  for (let n = 100000 + i * 7; ; n++) if (!right.has(String(n))) return String(n);
}

test('(d) "ignore" decides are bounded per user across addresses: a burst of guesses is refused after the first failures, only a few a minute get through', async () => {
  const { service, logs, advance, now } = rig();
  let decided = 0;
  const replies: DecideReply[] = [];
  // 600 guesses within one minute from 600 addresses (what a compromised gateway could send).
  for (let i = 0; i < 600; i++) {
    const r = await service.decide({ user: "alice", code: wrongCode(now(), i), service: "gateway", clientAddress: `198.51.100.${i % 250}`, rateLimit: "ignore" });
    replies.push(r);
    if (!(r.outcome === "rejected" && r.reason === "rate-limited")) decided++;
    advance(100);
  }
  assert.ok(decided <= 15, `at most a handful of the 600 guesses were decided within the minute, not ${decided}`);
  assert.ok(logs.includes("decide:rejected:regulated"), "the refusals are logged");
});

test("(d) the owner's right code still gets through after the pause", async () => {
  const { service, advance, now } = rig();
  for (let i = 0; i < 30; i++) {
    await service.decide({ user: "alice", code: wrongCode(now(), i), service: "gateway", clientAddress: `203.0.113.${i}`, rateLimit: "ignore" });
    advance(50);
  }
  advance(11_000);
  const r = await service.decide({ user: "alice", code: totp(now()), service: "gateway", clientAddress: "192.0.2.77", rateLimit: "ignore" });
  assert.equal(r.outcome, "accepted");
});

test('(d) "apply" decides are not regulated here (RATE_LIMIT in the state file applies)', async () => {
  const { service, advance, now } = rig();
  let regulated = 0;
  for (let i = 0; i < 40; i++) {
    const r = await service.decide({ user: "alice", code: wrongCode(now(), i), service: "radius", clientAddress: "127.0.0.1" });
    if (r.outcome === "rejected" && r.reason === "rate-limited") regulated++;
    advance(10);
  }
  assert.equal(regulated, 0);
});
