// The decision service regulates gateway decides per user and per client address (RT-B F3: without an address).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { localDecisionService, type PeekableStore, type ServiceAccount } from "../../src/adapters/server/decisions.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
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

// RT-B F3 on the server side: the gateway names no client address when its proxy did not say who
// the client is; such decides must not share one "unknown" key that a few failures would ban.
test("decides without a client address are counted per request: failures of one unknown client do not ban the next", async () => {
  const { service, advance, now } = rig();
  for (let i = 0; i < 6; i++) {
    const r = await service.decide({ user: "alice", code: wrongCode(now(), i), service: "gateway", rateLimit: "ignore" });
    assert.equal(r.outcome, "rejected", String(i));
    advance(11_000);
  }
  // The per-user slow-down is over (find_time without a failure); an address or pair ban would still hold.
  advance(150_000);
  assert.deepEqual(await service.decide({ user: "alice", code: totp(now()), service: "gateway", rateLimit: "ignore" }), { outcome: "accepted", via: "totp" });
});
