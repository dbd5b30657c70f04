// The gateway's shared state across restarts and refusals (issue 11, RT2 F1/F2), with fixed clocks:
// a logout made while the database is down is journaled, holds after a restart at once, and is
// written before the first poll counts; a write the database refuses for good (privilege,
// constraint) never stops the reads, is logged as a configuration error, and lets nobody in.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Regulator, type Ban, type RegulatorPolicy } from "../../src/core/web/index.js";
import { createSharedState } from "../../src/adapters/http/shared-state.js";
import { GatewayStateRefused, GatewayStateUnavailable, LONGEST_SESSION_MS, type GatewayStateStore, type Revocation } from "../../src/ports/gateway-state.js";
import type { RevocationJournal } from "../../src/stores/gateway-journal.js";

const POLICY: RegulatorPolicy = { maxRetries: 2, findTimeMs: 120_000, banTimeMs: 300_000, userDelayMaxMs: 10_000, maxEntries: 1000 };
const SID = "sid-cccccccccccccccccccc";

function database() {
  const rows: { revocation?: Revocation; ban?: Ban }[] = [];
  const db = { rows, down: false, refuseBans: false, refuseRevocations: false, reads: 0 };
  const fail = () => {
    if (db.down) throw new GatewayStateUnavailable("the shared state in postgres://db/otpgate cannot be reached (connect ECONNREFUSED)");
  };
  const store: GatewayStateStore = {
    where: "postgres://db/otpgate",
    async revoke(revocation) {
      fail();
      if (db.refuseRevocations)
        throw new GatewayStateRefused(
          "the shared state in postgres://db/otpgate refused the gateway's role (permission denied for table otpgate_gateway_revocations, SQLSTATE 42501): a configuration error",
        );
      rows.push({ revocation });
    },
    async bans(bans) {
      fail();
      if (db.refuseBans)
        throw new GatewayStateRefused("the shared state in postgres://db/otpgate refused the gateway's role (permission denied for table otpgate_gateway_bans, SQLSTATE 42501): a configuration error");
      for (const ban of bans) rows.push({ ban });
    },
    async changes() {
      fail();
      db.reads++;
      return { revocations: rows.flatMap((r) => (r.revocation ? [r.revocation] : [])), bans: [], cursor: 0 };
    },
    async prune() {},
    async close() {},
  };
  return { db, store };
}

/** Every save is kept (a copy); `lastOnly` keeps just the latest (10,000 saves of up to 10,000 entries would be 50 million). */
function memoryJournal(lastOnly = false): RevocationJournal & { saved: Revocation[][] } {
  const saved: Revocation[][] = [];
  const save = (r: readonly Revocation[]) => {
    if (lastOnly) saved.length = 0;
    saved.push([...r]);
  };
  return { path: "/var/lib/otpgate/gateway.pending-revocations", saved, load: () => [...(saved.at(-1) ?? [])], save };
}

const flushed = () => new Promise((r) => setImmediate(r));

test("a logout while the database is down is journaled before anything else, holds after a restart, and is written before the first poll counts", async () => {
  const clock = { t: 5_000_000 };
  const { db, store } = database();
  const journal = memoryJournal();
  const logs: Record<string, unknown>[] = [];
  const opts = { store, clock: { nowMs: () => clock.t }, log: (e: Record<string, unknown>) => void logs.push(e), absoluteMs: 3_600_000, journal };
  const a = createSharedState(opts);
  assert.ok(await a.sync());
  db.down = true;
  await a.store.revokeSession(SID, clock.t + 60_000, clock.t);
  assert.deepEqual(journal.saved[0], [{ kind: "session", sid: SID, until: clock.t + 60_000 }], "journaled at once");
  await flushed();
  await a.close();
  assert.ok(
    logs.some((l) => /1 revocation\(s\) not yet in postgres:\/\/db\/otpgate stay in .*gateway.pending-revocations/.test(String(l["message"]))),
    JSON.stringify(logs),
  );
  // The restart, the database still down: the logout holds here at once.
  const b = createSharedState(opts);
  assert.equal(b.store.read().state.revoked.has(SID), true, "held after the restart");
  assert.equal(await b.sync(), false);
  // The database answers but refuses nothing yet: the first poll writes the journal, then counts.
  db.down = false;
  assert.ok(await b.sync());
  assert.deepEqual(db.rows, [{ revocation: { kind: "session", sid: SID, until: 5_060_000 } }]);
  assert.deepEqual(journal.saved.at(-1), [], "the journal is emptied");
});

test("revocations journaled by an earlier run: a poll whose reads work but whose writes fail does not count", async () => {
  const clock = { t: 5_000_000 };
  const { db, store } = database();
  const journal = memoryJournal();
  journal.save([{ kind: "user", user: "alice", at: clock.t - 1000, until: clock.t + 60_000 }]);
  const shared = createSharedState({ store, clock: { nowMs: () => clock.t }, log: () => undefined, absoluteMs: 3_600_000, journal });
  assert.equal(shared.store.read().state.validAfter.get("alice"), clock.t - 1000);
  // A write that fails for a passing reason (timeout) while reads work: not healthy yet.
  const revoke = store.revoke;
  store.revoke = async () => {
    throw new GatewayStateUnavailable("the shared state in postgres://db/otpgate cannot be reached (timeout)");
  };
  assert.equal(await shared.sync(), false);
  assert.equal(shared.available(clock.t), false);
  assert.equal(db.reads, 1, "the reads went on");
  store.revoke = revoke;
  assert.ok(await shared.sync());
  assert.equal(db.rows.length, 1);
});

test("a ban the database refuses: reads go on, one configuration-error line, the ban holds on this instance only", async () => {
  const clock = { t: 7_000_000 };
  const { db, store } = database();
  db.refuseBans = true;
  const logs: Record<string, unknown>[] = [];
  const shared = createSharedState({ store, clock: { nowMs: () => clock.t }, log: (e) => void logs.push(e), absoluteMs: 3_600_000, journal: memoryJournal() });
  const regulator = new Regulator(POLICY, shared.publishBan);
  shared.attachRegulator(regulator);
  assert.ok(await shared.sync());
  const subject = "user:nosuchuser";
  for (let i = 0; i < 3; i++) regulator.fail({ subject, address: "203.0.113.9" }, clock.t);
  await flushed();
  for (let i = 0; i < 30; i++) {
    clock.t += 1000;
    assert.ok(await shared.sync(), "every poll still counts");
  }
  assert.equal(shared.available(clock.t), true);
  const errors = logs.filter((l) => l["event"] === "error");
  assert.equal(errors.length, 1, `one line for two refused bans (pair, address): ${JSON.stringify(logs)}`);
  assert.equal(errors[0]!["result"], "configuration");
  assert.match(String(errors[0]!["message"]), /permission denied for table otpgate_gateway_bans.*kept here only/);
  assert.doesNotMatch(String(errors[0]!["message"]), /cannot be reached/);
  assert.equal(regulator.admit({ subject, address: "203.0.113.9" }, clock.t).kind, "banned", "the ban holds here");
  assert.equal(db.rows.length, 0);
});

test("a logout the database refuses: held here and kept in the journal; the polls go on", async () => {
  const clock = { t: 7_000_000 };
  const { db, store } = database();
  db.refuseRevocations = true;
  const journal = memoryJournal();
  const logs: Record<string, unknown>[] = [];
  const shared = createSharedState({ store, clock: { nowMs: () => clock.t }, log: (e) => void logs.push(e), absoluteMs: 3_600_000, journal });
  assert.ok(await shared.sync());
  await shared.store.revokeUser("bob", clock.t);
  await flushed();
  clock.t += 1000;
  assert.ok(await shared.sync());
  assert.equal(shared.store.read().state.validAfter.get("bob"), 7_000_000);
  assert.deepEqual(journal.saved.at(-1), [{ kind: "user", user: "bob", at: 7_000_000, until: 7_000_000 + LONGEST_SESSION_MS }]);
  assert.ok(
    logs.some((l) => l["result"] === "configuration" && /otpgate_gateway_revocations/.test(String(l["message"]))),
    JSON.stringify(logs),
  );
  // Fixed: written at the next try (after the retry pause), and the journal is emptied.
  db.refuseRevocations = false;
  clock.t += 31_000;
  assert.ok(await shared.sync());
  assert.equal(db.rows.length, 1);
  assert.deepEqual(journal.saved.at(-1), []);
});

test("beyond the journal's bound the oldest revocations are dropped, and the count is logged", async () => {
  const clock = { t: 9_000_000 };
  const { db, store } = database();
  db.down = true;
  const journal = memoryJournal(true);
  const logs: Record<string, unknown>[] = [];
  const { MAX_JOURNAL } = await import("../../src/stores/gateway-journal.js");
  const sid = (i: number) => `sid-${String(i).padStart(20, "0")}`;
  // A full journal left by an earlier run (10,000 logouts while the database was down; made one by
  // one here, each is a copy of the sessions state: ~40 s of CPU), then one more logout.
  journal.save(Array.from({ length: MAX_JOURNAL }, (_, i) => ({ kind: "session" as const, sid: sid(i), until: clock.t + 60_000 })));
  const shared = createSharedState({ store, clock: { nowMs: () => clock.t }, log: (e) => void logs.push(e), absoluteMs: 3_600_000, journal });
  await shared.store.revokeSession(sid(MAX_JOURNAL), clock.t + 60_000, clock.t);
  await flushed();
  const kept = journal.saved.at(-1)!;
  assert.equal(kept.length, MAX_JOURNAL);
  assert.deepEqual(
    [kept[0], kept.at(-1)],
    [
      { kind: "session", sid: sid(1), until: 9_060_000 },
      { kind: "session", sid: sid(MAX_JOURNAL), until: 9_060_000 },
    ],
    "the oldest is dropped, the newest kept",
  );
  assert.equal(shared.store.read().state.revoked.has(sid(0)), true, "the dropped logout still holds on this instance");
  assert.ok(
    logs.some((l) => /^1 revocation\(s\) not yet in .* were dropped/.test(String(l["message"]))),
    "the drop is logged",
  );
});
