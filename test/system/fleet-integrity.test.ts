// Fix round of issue 11 (RT1 F1, F2, F6): a running store across a key rotation; a database writer
// without the key cannot add an emergency code through the option lines; a password in the URL's
// query is refused, and never printed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/core/errors.js";
import { DEFAULT_POLICY } from "../../src/core/verify.js";
import { fleetOptionsOf } from "../../src/adapters/cli/store-options.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { authenticate } from "../../src/services/authenticate.js";
import type { PgFleetStore } from "../../src/stores/pg/fleet-store.js";
import { appendKey, readKeyFile } from "../../src/stores/pg/key-file.js";
import { openFleetStore } from "../../src/stores/pg/open.js";
import { reencryptAll } from "../../src/stores/pg/rotate.js";
import { DOC, SECRET, fleetStore, keyFile } from "../helpers/fleet.js";
import { codeAt } from "../helpers/otp.js";
import { startCluster } from "../helpers/postgres.js";
import { systemReady, uniqueName } from "../helpers/system.js";

const STEP = Math.floor(1_700_000_010_000 / 30_000);

async function decide(store: PgFleetStore, user: string, entry: string, step: number): Promise<string> {
  try {
    const outcome = await authenticate({ store: store.account(user, entry), clock: { nowMs: () => step * 30_000 + 1000 }, macFactory: nodeMacFactory }, entry, DEFAULT_POLICY);
    return outcome.kind;
  } catch (err) {
    return `error: ${(err as Error).name}: ${(err as Error).message}`;
  }
}

test("F1: a long-running store keeps accepting logins across rotate-key --add and the re-encryption", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const running = await fleetStore(t, pg, keys);
  const user = uniqueName("k");
  await running.put(user, DOC, "create");
  assert.equal(await decide(running, user, codeAt(SECRET, STEP), STEP), "accepted", "before");
  const newId = appendKey(keys, new Date()); // the admin's --add, same file on this host
  const admin = await fleetStore(t, pg, keys); // the admin's `db rotate-key`
  assert.equal(await reencryptAll(admin.pool, admin.keys()), 1);
  assert.equal(pg.psql(`SELECT key_id FROM otpgate_accounts WHERE user_name = '${user}'`).trim(), newId);
  assert.equal(await decide(running, user, codeAt(SECRET, STEP + 2), STEP + 2), "accepted", "after the rotation, same process");
  assert.equal(readKeyFile(keys).current, newId);
});

test("F2: an 8-digit option line written into the database is not an emergency code; the login is refused and nothing changes", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t));
  const user = uniqueName("o");
  await store.put(user, DOC, "create");
  pg.psql(`UPDATE otpgate_accounts SET options = options || E'87654321\\n' WHERE user_name = '${user}'`);
  const before = pg.psql(`SELECT options, revision FROM otpgate_accounts WHERE user_name = '${user}'`);
  const result = await decide(store, user, "87654321", STEP);
  assert.notEqual(result, "accepted", "a code written as an option line by a database writer");
  assert.match(result, /changed outside otpgate|not an option/);
  assert.equal(pg.psql(`SELECT options, revision FROM otpgate_accounts WHERE user_name = '${user}'`), before, "nothing changed");
  await assert.rejects(store.document(user), /changed outside otpgate|not an option/);
});

const PASSWORD_URLS = [
  "postgres://otpgate@127.0.0.1:5432/otpgate?password=Sup3r",
  "postgres://otpgate@127.0.0.1:5432/otpgate?sslmode=disable&PASSWORD=Sup3r",
  "postgresql://otpgate@127.0.0.1:5432/otpgate?pass%77ord=Sup3r",
  "postgres://otpgate@127.0.0.1:5432/otpgate?sslpassword=Sup3r",
  "postgres://otpgate@127.0.0.1:5432/otpgate?SslPassword=Sup3r",
  "postgres://otpgate:Sup3r@127.0.0.1:5432/otpgate",
  "postgres://:Sup3r@127.0.0.1:5432/otpgate",
];

test("F6: a password (or sslpassword) anywhere in the store URL is refused, and the message does not repeat it", async () => {
  for (const url of PASSWORD_URLS) {
    assert.throws(
      () => fleetOptionsOf({ store: url }),
      (e: Error) => e instanceof UsageError && /password/i.test(e.message) && !e.message.includes("Sup3r"),
      url,
    );
    await assert.rejects(openFleetStore({ url, keyFile: null, log: () => {} }), (e: Error) => /password/i.test(e.message) && !e.message.includes("Sup3r"), url);
  }
  assert.ok(fleetOptionsOf({ store: "postgres://otpgate@127.0.0.1:5432/otpgate?sslmode=verify-full&sslrootcert=/etc/otpgate/db-ca.crt" }));
});
