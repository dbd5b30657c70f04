import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_POLICY } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import type { AccountStore, LockedAccount } from "../../src/ports/index.js";
import { authenticate } from "../../src/services/authenticate.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { codeAt } from "../helpers/otp.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const clock = { nowMs: () => 300_000_000 };
const TEXT = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;

test("accepts, commits the new state, and refuses the replay", async () => {
  const store = new MemoryAccountStore(TEXT);
  const deps = { store, clock, macFactory: nodeMacFactory };
  assert.equal((await authenticate(deps, codeAt(SECRET, 10000), DEFAULT_POLICY)).kind, "accepted");
  assert.match(store.current!, /DISALLOW_REUSE 10000/);
  assert.deepEqual(await authenticate(deps, codeAt(SECRET, 10000), DEFAULT_POLICY), { kind: "rejected", reason: "replay" });
});

test("not enrolled when there is no state", async () => {
  const deps = { store: new MemoryAccountStore(null), clock, macFactory: nodeMacFactory };
  assert.deepEqual(await authenticate(deps, "123456", DEFAULT_POLICY), { kind: "not-enrolled" });
});

test("a conflict reloads and decides again: the emergency code used by the other writer is refused", async () => {
  const inner = new MemoryAccountStore(TEXT);
  let sessions = 0;
  const store: AccountStore = {
    acquire: async () => {
      const s = (await inner.acquire()) as LockedAccount;
      if (sessions++ === 0) inner.externalWrite(TEXT.replace("12345678\n", ""));
      return s;
    },
  };
  const outcome = await authenticate({ store, clock, macFactory: nodeMacFactory }, "12345678", DEFAULT_POLICY);
  assert.deepEqual(outcome, { kind: "rejected", reason: "wrong" });
  assert.equal(sessions, 2);
});

test("a second conflict rejects and never accepts", async () => {
  const inner = new MemoryAccountStore(TEXT);
  const store: AccountStore = {
    acquire: async () => {
      const s = (await inner.acquire()) as LockedAccount;
      inner.externalWrite(inner.current + "");
      return s;
    },
  };
  const outcome = await authenticate({ store, clock, macFactory: nodeMacFactory }, "12345678", DEFAULT_POLICY);
  assert.deepEqual(outcome, { kind: "rejected", reason: "conflict" });
  assert.match(inner.current!, /12345678/, "the emergency code was not consumed");
});
