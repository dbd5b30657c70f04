// Key rotation on the fleet store (issue 11): logins before, during (mixed key ids) and after;
// --retire removes only unused keys; a host without the current key refuses clearly and changes
// nothing; the CLI's two-phase rotation.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { DEFAULT_POLICY } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { FleetUnavailable } from "../../src/ports/fleet.js";
import { authenticate } from "../../src/services/authenticate.js";
import { FleetKeyMissing } from "../../src/stores/pg/errors.js";
import type { PgFleetStore } from "../../src/stores/pg/fleet-store.js";
import { appendKey, readKeyFile } from "../../src/stores/pg/key-file.js";
import { reencryptAll } from "../../src/stores/pg/rotate.js";
import { CODES, DOC, SECRET, fleetStore, keyFile } from "../helpers/fleet.js";
import { codeAt } from "../helpers/otp.js";
import { startCluster } from "../helpers/postgres.js";
import { runCli, systemReady, tempDir, uniqueName } from "../helpers/system.js";

const NOW = 1_700_000_010_000;
const STEP = Math.floor(NOW / 30_000);

/** Log `user` in with the TOTP code of `step` (a fixed clock at that step). */
async function login(store: PgFleetStore, user: string, step: number): Promise<string> {
  const code = codeAt(SECRET, step);
  const outcome = await authenticate({ store: store.account(user, code), clock: { nowMs: () => step * 30_000 + 1000 }, macFactory: nodeMacFactory }, code, DEFAULT_POLICY);
  return outcome.kind;
}

test("rotation: logins work before, during (some rows re-encrypted, some not) and after; --retire keeps keys still in use", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const oldId = readKeyFile(keys).current;
  let store = await fleetStore(t, pg, keys);
  const users = Array.from({ length: 6 }, () => uniqueName("r"));
  for (const u of users) await store.put(u, DOC, "create");
  let step = STEP;
  for (const u of users) assert.equal(await login(store, u, step), "accepted", "before");

  const newId = appendKey(keys, new Date());
  assert.notEqual(newId, oldId);
  store = await fleetStore(t, pg, keys); // every host has the new file now
  step += 2;
  let checkedMixed = false;
  const rotated = await reencryptAll(store.pool, store.keys(), {
    batch: 2,
    afterRow: async (p) => {
      if (p.rotated !== 3) return;
      const ids = pg.psql("SELECT DISTINCT key_id FROM otpgate_accounts ORDER BY 1").trim().split("\n").sort();
      assert.deepEqual(ids, [oldId, newId].sort(), "mixed key ids during the rotation");
      for (const u of users) assert.equal(await login(store, u, step), "accepted", `during: ${u}`);
      checkedMixed = true;
    },
  });
  assert.ok(checkedMixed);
  assert.equal(rotated, 6);
  assert.equal(pg.psql("SELECT DISTINCT key_id FROM otpgate_accounts").trim(), newId, "every secret under the new key");
  step += 2;
  for (const u of users) assert.equal(await login(store, u, step), "accepted", "after");
  // The emergency codes were digested under the old key: it stays (and they still work).
  assert.equal((await authenticate({ store: store.account(users[0]!, CODES[0]), clock: { nowMs: () => NOW }, macFactory: nodeMacFactory }, CODES[0]!, DEFAULT_POLICY)).kind, "accepted");
  const args = ["--store", pg.url, "--db-key-file", keys];
  const retire = runCli(["db", "rotate-key", "--retire", ...args]);
  assert.equal(retire.status, 0, retire.stderr);
  assert.match(retire.stdout, new RegExp(`kept ${oldId}: 0 secret\\(s\\) and 29 emergency code\\(s\\) still use it`));
  assert.deepEqual([...readKeyFile(keys).keys.keys()], [oldId, newId], "a key in use is kept");
  // New codes for everyone (under the new key): now the old key can go.
  for (const u of users) await store.replaceScratchCodes(u, [11111111, 22222222]);
  const retire2 = runCli(["db", "rotate-key", "--retire", ...args]);
  assert.equal(retire2.status, 0, retire2.stderr);
  assert.match(retire2.stdout, new RegExp(`retired ${oldId} from`));
  assert.deepEqual([...readKeyFile(keys).keys.keys()], [newId]);
  const fresh = await fleetStore(t, pg, keys);
  for (const u of users) assert.equal(await login(fresh, u, step + 2), "accepted", "after --retire");
});

test("a host whose key file lacks the row's key id refuses the login, names the key id, and changes nothing", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const behind = join(tempDir(t), "db.key");
  copyFileSync(keys, behind); // a host that did not get the rotated file
  const newId = appendKey(keys, new Date());
  const rotated = await fleetStore(t, pg, keys);
  const user = uniqueName("k");
  await rotated.put(user, DOC, "create");
  const stale = await fleetStore(t, pg, behind);
  const before = pg.psql(`SELECT options, revision, updated_at FROM otpgate_accounts WHERE user_name = '${user}'; SELECT count(*) FROM otpgate_emergency_codes WHERE user_name = '${user}'`);
  await assert.rejects(
    login(stale, user, STEP),
    (e: Error) => e instanceof FleetKeyMissing && e instanceof FleetUnavailable && e.message.includes(newId) && /copy the current key file/.test(e.message),
  );
  await assert.rejects(
    authenticate({ store: stale.account(user, CODES[1]), clock: { nowMs: () => NOW }, macFactory: nodeMacFactory }, CODES[1]!, DEFAULT_POLICY),
    (e: Error) => e instanceof FleetKeyMissing,
  );
  assert.equal(
    pg.psql(`SELECT options, revision, updated_at FROM otpgate_accounts WHERE user_name = '${user}'; SELECT count(*) FROM otpgate_emergency_codes WHERE user_name = '${user}'`),
    before,
    "nothing changed",
  );
  assert.equal(await login(rotated, user, STEP), "accepted", "the host with the current file still works");
});

test("otpgate db rotate-key --add, then rotate-key: two phases through the CLI", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const store = await fleetStore(t, pg, keys);
  const user = uniqueName("c");
  await store.put(user, DOC, "create");
  const args = ["--store", pg.url, "--db-key-file", keys];
  const add = runCli(["db", "rotate-key", "--add", ...args]);
  assert.equal(add.status, 0, add.stderr);
  const newId = readKeyFile(keys).current;
  assert.match(add.stdout, new RegExp(`added the key ${newId} .*\\n.*copy .* to every host`));
  assert.ok(readFileSync(keys, "latin1").endsWith(`\n`));
  const both = runCli(["db", "rotate-key", "--add", "--retire", ...args]);
  assert.equal(both.status, 2);
  const rotate = runCli(["db", "rotate-key", ...args]);
  assert.equal(rotate.status, 0, rotate.stderr);
  assert.match(rotate.stdout, /re-encrypted 1 secret\(s\) under /);
  assert.equal(pg.psql(`SELECT key_id FROM otpgate_accounts WHERE user_name = '${user}'`).trim(), newId);
  const again = runCli(["db", "rotate-key", ...args]);
  assert.match(again.stdout, /re-encrypted 0 secret\(s\)/);
  const fresh = await fleetStore(t, pg, keys);
  assert.equal(await login(fresh, user, STEP), "accepted");
});
