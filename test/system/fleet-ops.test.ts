// The fleet store in operation (issue 11): schema versions, the database going away and coming
// back, two pools (two hosts) deciding the same code at once, HOTP and skew state, the audit table
// and its retention.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { DEFAULT_POLICY } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { FleetUnavailable } from "../../src/ports/fleet.js";
import { authenticate } from "../../src/services/authenticate.js";
import { connectFleetStore } from "../../src/stores/pg/connect.js";
import type { PgFleetStore } from "../../src/stores/pg/fleet-store.js";
import { SCHEMA_VERSION } from "../../src/stores/pg/migrations.js";
import { DOC, SECRET, fleetStore, keyFile } from "../helpers/fleet.js";
import { codeAt } from "../helpers/otp.js";
import { startCluster } from "../helpers/postgres.js";
import { CLI, systemReady, uniqueName } from "../helpers/system.js";

const NOW = 1_700_000_010_000;
const STEP = Math.floor(NOW / 30_000);

const decide = (store: PgFleetStore, user: string, entry: string, nowMs = NOW) =>
  authenticate({ store: store.account(user, entry), clock: { nowMs: () => nowMs }, macFactory: nodeMacFactory }, entry, DEFAULT_POLICY);

test("schema: an older one is refused without migrate, a newer one always; two processes migrating at once both succeed", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  await assert.rejects(connectFleetStore({ url: pg.url, keyFile: keys, log: () => {} }), (e: Error) => /schema version 0, this otpgate needs 1: run otpgate db migrate/.test(e.message));
  assert.equal(pg.psql("SELECT to_regclass('otpgate_accounts') IS NULL"), "t\n", "nothing was created");
  const migrateCli = () =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI, "db", "migrate", "--store", pg.url, "--db-key-file", keys], { env: { PATH: "/usr/bin:/bin" } });
      let out = "";
      p.stdout.on("data", (d) => (out += d));
      p.stderr.on("data", (d) => (out += d));
      p.on("close", (code) => resolve({ code, out }));
    });
  const results = await Promise.all([migrateCli(), migrateCli(), migrateCli()]);
  for (const r of results) assert.equal(r.code, 0, r.out);
  assert.equal(results.filter((r) => /applied schema migration\(s\) 1/.test(r.out)).length, 1, results.map((r) => r.out).join("|"));
  assert.equal(pg.psql("SELECT count(*) FROM otpgate_schema"), `${SCHEMA_VERSION}\n`);
  const store = await connectFleetStore({ url: pg.url, keyFile: keys, log: () => {} });
  await store.close();
  pg.psql(`INSERT INTO otpgate_schema (version, about) VALUES (${SCHEMA_VERSION + 1}, 'from the future')`);
  for (const migrate of [false, true]) {
    await assert.rejects(connectFleetStore({ url: pg.url, keyFile: keys, migrate, log: () => {} }), (e: Error) =>
      /has schema version 2, newer than this otpgate knows \(1\): upgrade otpgate/.test(e.message),
    );
  }
});

test("database down: FleetUnavailable quickly, no crash; back up: the same store object works again", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const warnings: string[] = [];
  const store = await fleetStore(t, pg, keyFile(t), { connectTimeoutMs: 2000, statementTimeoutMs: 2000, log: (_l, m) => warnings.push(m) });
  const user = uniqueName("d");
  await store.put(user, DOC, "create");
  assert.equal((await decide(store, user, codeAt(SECRET, STEP))).kind, "accepted", "pooled connections exist now");
  await pg.stop("immediate");
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    await assert.rejects(decide(store, user, codeAt(SECRET, STEP + 1), NOW + 30_000), (e: Error) => e instanceof FleetUnavailable && /unavailable/.test(e.message) && !e.message.includes(SECRET));
    assert.ok(Date.now() - started < 4500, `refused within the timeouts (${Date.now() - started} ms)`);
  }
  store.audit({ at: NOW, user, host: "h", service: "radius", clientAddress: null, result: "error", reason: "unavailable", via: null });
  await store.flushAudit(); // never throws, the record is kept for later
  await pg.start();
  assert.equal((await decide(store, user, codeAt(SECRET, STEP + 1), NOW + 30_000)).kind, "accepted", "works again without a restart");
  await store.flushAudit();
  assert.equal((await store.auditRecords({ user })).length, 1, "the record queued while down was written once it was back");
});

test("two pools (two hosts) deciding the same code at the same time: exactly one accepts, every round", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const a = await fleetStore(t, pg, keys);
  const b = await fleetStore(t, pg, keys);
  const user = uniqueName("c");
  await a.put(user, `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n${Array.from({ length: 25 }, (_, i) => 20_000_000 + i * 1111).join("\n")}\n`, "create");
  for (let round = 0; round < 25; round++) {
    const now = NOW + round * 30_000;
    const code = codeAt(SECRET, STEP + round);
    const scratch = String(20_000_000 + round * 1111);
    const [x, y, s1, s2] = await Promise.all([decide(a, user, code, now), decide(b, user, code, now), decide(a, user, scratch, now), decide(b, user, scratch, now)]);
    assert.equal([x, y].filter((o) => o.kind === "accepted").length, 1, `round ${round}: TOTP ${x.kind}/${y.kind}`);
    assert.equal([s1, s2].filter((o) => o.kind === "accepted").length, 1, `round ${round}: emergency code ${s1.kind}/${s2.kind}`);
  }
  assert.equal((await a.list(user))[0]!.scratchCodes, 0);
});

test("HOTP counter and time-skew learning are kept in the row", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t));
  const hotp = uniqueName("h");
  await store.put(hotp, `${SECRET}\n" HOTP_COUNTER 1\n" WINDOW_SIZE 3\n`, "create");
  assert.equal((await decide(store, hotp, codeAt(SECRET, 2))).kind, "accepted");
  assert.match((await store.list(hotp))[0]!.options, /HOTP_COUNTER 3/);
  assert.equal((await decide(store, hotp, codeAt(SECRET, 2))).kind, "rejected", "a used HOTP code is behind the counter");
  const skew = uniqueName("s");
  await store.put(skew, `${SECRET}\n" TOTP_AUTH\n`, "create");
  const at = (i: number) => (STEP + i) * 30_000 + 1000;
  assert.deepEqual(await decide(store, skew, codeAt(SECRET, STEP - 10), at(0)), { kind: "rejected", reason: "skew-pending" });
  assert.equal((await decide(store, skew, codeAt(SECRET, STEP - 9), at(1))).kind, "rejected");
  assert.deepEqual(await decide(store, skew, codeAt(SECRET, STEP - 8), at(2)), { kind: "accepted", via: "totp-skew-reset", step: STEP - 8, skew: -10, prefix: "" });
  assert.match((await store.list(skew))[0]!.options, /^" TIME_SKEW -10$/m);
});

test("audit: records written in batches, queried by user and time, never a code; retention prunes old ones", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const store = await fleetStore(t, pg, keyFile(t));
  const now = Date.now();
  for (let i = 0; i < 450; i++) {
    store.audit({
      at: now - i * 3_600_000,
      user: i % 3 === 0 ? "alice" : "bob",
      host: "h",
      service: "radius",
      clientAddress: "198.51.100.7",
      result: i % 2 ? "rejected" : "accepted",
      reason: i % 2 ? "wrong" : "ok",
      via: i % 2 ? null : "totp",
    });
  }
  await new Promise((r) => setTimeout(r, 600)); // the batches go without a flush
  assert.equal(pg.psql("SELECT count(*) FROM otpgate_audit"), "450\n");
  const alice = await store.auditRecords({ user: "alice", since: now - 10 * 3_600_000 - 1 });
  assert.deepEqual(
    alice.map((r) => Math.round((now - r.at) / 3_600_000)),
    [0, 3, 6, 9],
  );
  assert.equal(alice[0]!.clientAddress, "198.51.100.7");
  assert.equal(pg.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'otpgate_audit' AND column_name ~ 'code|secret|password'"), "0\n");
  const pruned = await store.pruneAudit(10); // 10 days: the records 0..239 hours old stay
  assert.equal(pruned, 450 - 240);
  assert.equal(pg.psql("SELECT count(*) FROM otpgate_audit"), "240\n");
});
