// Attacks on the fleet store (issue 11): what a database dump reveals, rows moved between users,
// a host without the current key, one user's flood of decisions starving everyone else's.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_POLICY } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { FleetUnavailable } from "../../src/ports/fleet.js";
import { authenticate } from "../../src/services/authenticate.js";
import { CODES, DOC, SECRET, fleetStore, keyFile } from "../helpers/fleet.js";
import { codeAt } from "../helpers/otp.js";
import { startCluster } from "../helpers/postgres.js";
import { systemReady, uniqueName } from "../helpers/system.js";

const NOW = 1_700_000_010_000;
const STEP = Math.floor(NOW / 30_000);
const clock = { nowMs: () => NOW };

test("a flood of decisions for one user cannot take every pooled connection: another user's login still goes through", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t), { poolMax: 3, connectTimeoutMs: 1500, statementTimeoutMs: 4000 });
  const victim = uniqueName("v");
  const other = uniqueName("o");
  await store.put(victim, DOC, "create");
  await store.put(other, DOC, "create");
  // One session holds the victim's row (a slow decision), and the flood queues behind it.
  const holder = (await store.account(victim).acquire())!;
  const flood = Array.from({ length: 8 }, () =>
    store
      .account(victim)
      .acquire()
      .then(async (s) => s?.release())
      .catch((e: unknown) => e),
  );
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  const outcome = await authenticate({ store: store.account(other, codeAt(SECRET, STEP)), clock, macFactory: nodeMacFactory }, codeAt(SECRET, STEP), DEFAULT_POLICY);
  assert.equal(outcome.kind, "accepted", "the other user's login is decided");
  assert.ok(Date.now() - started < 1000, `decided in ${Date.now() - started} ms, not after waiting for a connection`);
  await holder.release();
  const results = await Promise.all(flood);
  for (const r of results) assert.ok(r === undefined || r instanceof FleetUnavailable, `a flooded acquire ends released or FleetUnavailable, not ${String(r)}`);
});

test("pg_dump of a fleet database holds no secret (base32, lower case, hex, base64) and no emergency code", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t));
  const users: { name: string; secret: string; codes: string[] }[] = [];
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  for (let i = 0; i < 4; i++) {
    const secret = Array.from({ length: 32 }, (_, j) => alphabet[(i * 7 + j * 13 + 5) % 32]).join("");
    const codes = Array.from({ length: 5 }, (_, j) => String(10_000_000 + (((i * 5 + j) * 7_777_777 + 1234) % 89_999_999)));
    const name = uniqueName("d");
    users.push({ name, secret, codes });
    await store.put(name, `${secret}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n${codes.join("\n")}\n`, "create");
  }
  const dump = pg.dump();
  assert.ok(dump.includes("otpgate_accounts") && dump.includes(users[0]!.name), "the dump has the accounts");
  for (const u of users) {
    const raw = base32Decode(u.secret);
    for (const form of [u.secret, u.secret.toLowerCase(), raw.toString("hex"), raw.toString("hex").toUpperCase(), raw.toString("base64").replace(/=+$/, "")]) {
      assert.ok(!dump.includes(form), `the dump holds ${u.name}'s secret (${form.slice(0, 6)}...)`);
    }
    for (const c of u.codes) assert.ok(!dump.includes(c), `the dump holds ${u.name}'s emergency code`);
  }
});

test("a row's secret or emergency codes copied onto another user do not work there (bound to the user name)", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t));
  const alice = uniqueName("a");
  const mallory = uniqueName("m");
  await store.put(alice, DOC, "create");
  await store.put(mallory, `JBSWY3DPEHPK3PXP\n" TOTP_AUTH\n`, "create");
  // Someone with write access to the table moves alice's sealed secret and digests onto mallory.
  pg.psql(`UPDATE otpgate_accounts m SET secret = a.secret, key_id = a.key_id FROM otpgate_accounts a WHERE a.user_name = '${alice}' AND m.user_name = '${mallory}';
           INSERT INTO otpgate_emergency_codes (user_name, key_id, digest) SELECT '${mallory}', key_id, digest FROM otpgate_emergency_codes WHERE user_name = '${alice}';`);
  const before = pg.psql(`SELECT options, revision FROM otpgate_accounts WHERE user_name = '${mallory}'`);
  await assert.rejects(store.account(mallory, codeAt(SECRET, STEP)).acquire(), (e: Error) => e instanceof FleetUnavailable && /does not decrypt/.test(e.message));
  assert.equal(pg.psql(`SELECT options, revision FROM otpgate_accounts WHERE user_name = '${mallory}'`), before, "nothing changed");
  // The digests alone (mallory's own secret back): alice's codes are not mallory's.
  await store.put(mallory, `JBSWY3DPEHPK3PXP\n" TOTP_AUTH\n`, "replace");
  pg.psql(`INSERT INTO otpgate_emergency_codes (user_name, key_id, digest) SELECT '${mallory}', key_id, digest FROM otpgate_emergency_codes WHERE user_name = '${alice}';`);
  const outcome = await authenticate({ store: store.account(mallory, CODES[0]), clock, macFactory: nodeMacFactory }, CODES[0]!, DEFAULT_POLICY);
  assert.equal(outcome.kind, "rejected", "alice's emergency code is refused for mallory");
});

function base32Decode(s: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of s) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
