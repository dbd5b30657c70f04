// One in-process decision service (otpgate server's decide) for the regulation tests: a memory store
// holding SECRET, a fixed clock starting at T0, and the log kinds it wrote. Codes come from the
// independent oracle (test/helpers/otp-oracle.ts), never from the code under test.
import { localDecisionService, type PeekableStore, type ServiceAccount } from "../../src/adapters/server/decisions.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { oracleBase32, oracleTotp } from "./otp-oracle.js";

export const SECRET = "2SH3V3GDW7ZNMGYE";
export const T0 = 1_700_000_010_000;

/** The TOTP code of SECRET at `nowMs`. */
export function totp(nowMs: number): string {
  return oracleTotp(oracleBase32(SECRET), Math.floor(nowMs / 1000));
}

/** A six-digit code that is none of the three codes WINDOW_SIZE 3 accepts at `nowMs` (a different one for each `i`). */
export function wrongCode(nowMs: number, i: number): string {
  const right = new Set([totp(nowMs - 30_000), totp(nowMs), totp(nowMs + 30_000)]);
  for (let n = 100000 + i * 7; ; n++) if (!right.has(String(n))) return String(n);
}

/** The service for user "alice" (uid 4242) with a clock the test advances. */
export function rig() {
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
