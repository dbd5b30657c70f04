// The fleet store on a real PostgreSQL cluster (issue 11): the AccountStore contract, the one
// decision on it (authenticate/verify), emergency codes as digests, two pools deciding at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_POLICY } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { authenticate } from "../../src/services/authenticate.js";
import { CODES, DOC, SECRET, fleetStore, keyFile } from "../helpers/fleet.js";
import { codeAt, wrongCode } from "../helpers/otp.js";
import { startCluster } from "../helpers/postgres.js";
import { systemReady, uniqueName } from "../helpers/system.js";

const NOW = 1_700_000_010_000;
const STEP = Math.floor(NOW / 30_000);
const clock = { nowMs: () => NOW };

test("AccountStore contract on PostgreSQL: null, commit visible, release without commit, row lock serializes", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t));
  const user = uniqueName("u");
  assert.equal(await store.account(user).acquire(), null, "not enrolled: null");
  assert.equal(await store.put(user, `${SECRET}\n" TOTP_AUTH\n`, "create"), "written");
  assert.equal(await store.put(user, `${SECRET}\n" TOTP_AUTH\n`, "create"), "exists");

  const s = (await store.account(user).acquire())!;
  assert.equal(s.text, `${SECRET}\n" TOTP_AUTH\n`);
  assert.deepEqual(await s.commit(`${SECRET}\n" TOTP_AUTH\n" RATE_LIMIT 3 30 1\n`), { ok: true });
  await s.release();
  const again = (await store.account(user).acquire())!;
  assert.equal(again.text, `${SECRET}\n" TOTP_AUTH\n" RATE_LIMIT 3 30 1\n`, "the commit is visible");
  await again.release();

  const noCommit = (await store.account(user).acquire())!;
  await noCommit.release();
  const after = (await store.account(user).acquire())!;
  assert.equal(after.text, `${SECRET}\n" TOTP_AUTH\n" RATE_LIMIT 3 30 1\n`, "release without commit changes nothing");
  // While this session holds the row, a second acquire waits (and an external write would wait too:
  // there is no conflict case on this store, the row lock excludes it).
  let secondGot = false;
  const second = store
    .account(user)
    .acquire()
    .then((x) => {
      secondGot = true;
      return x;
    });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(secondGot, false, "the second acquire waits for the row lock");
  const external = store.put(user, `${SECRET}\n" HOTP_COUNTER 1\n`, "replace");
  let externalDone = false;
  void external.then(() => (externalDone = true));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(externalDone, false, "an external write waits while a session holds the row");
  assert.deepEqual(await after.commit(`${SECRET}\n" TOTP_AUTH\n" RATE_LIMIT 3 30 2\n`), { ok: true });
  const s2 = (await second)!;
  assert.equal(s2.text, `${SECRET}\n" TOTP_AUTH\n" RATE_LIMIT 3 30 2\n`, "the waiting session sees the commit");
  await s2.release();
  assert.equal(await external, "written");
  const s3 = (await store.account(user).acquire())!;
  assert.equal(s3.text, `${SECRET}\n" HOTP_COUNTER 1\n`);
  await s3.release();
});

test("the one decision on PostgreSQL: TOTP, replay, rate limit, emergency codes once, fillers never match", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t));
  const user = uniqueName("u");
  await store.put(user, DOC, "create");
  const deps = (entry: string) => ({ store: store.account(user, entry), clock, macFactory: nodeMacFactory });
  const decide = (entry: string) => authenticate(deps(entry), entry, DEFAULT_POLICY);

  const code = codeAt(SECRET, STEP);
  assert.equal((await decide(code)).kind, "accepted");
  assert.deepEqual(await decide(code), { kind: "rejected", reason: "replay" });
  // An emergency code: accepted once, its digest gone, remaining counted right.
  const first = await decide(CODES[2]!);
  assert.deepEqual(first, { kind: "accepted", via: "scratch", remaining: 4, prefix: "" });
  assert.equal((await store.list(user))[0]!.scratchCodes, 4);
  const reused = await decide(CODES[2]!);
  assert.equal(reused.kind, "rejected", "an emergency code works once");
  // The filler value is never accepted, whatever it is.
  assert.equal((await decide("10000000")).kind, "rejected");
  assert.equal((await decide("10000001")).kind, "rejected");
  assert.equal((await store.list(user))[0]!.scratchCodes, 4, "no code was used up by fillers");
  // RATE_LIMIT 3 30 (3 tries so far in this window... already 5 attempts): refused now.
  const wrong = wrongCode(SECRET, STEP - 5, STEP + 5);
  assert.deepEqual(await decide(wrong), { kind: "rejected", reason: "rate-limited" });
});
