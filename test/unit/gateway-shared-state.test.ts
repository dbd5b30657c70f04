// The gateway's shared state (issue 11) with fixed clocks and an in-memory store: bans decided by
// one regulator hold on another; revocations arrive by polling; a store that stops answering makes
// sessions fail closed after STALE_AFTER_MS (and only then), decisions made meanwhile are kept and
// written when it answers again; the configuration's store keys are checked.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Regulator, type Ban, type RegulatorPolicy } from "../../src/core/web/index.js";
import { createSharedState, MAX_PENDING_BANS, STALE_AFTER_MS } from "../../src/adapters/http/shared-state.js";
import { parseGatewayConfig, type ConfigProblem, GatewayConfigError } from "../../src/adapters/http/gateway-config.js";
import { GatewayStateUnavailable, LONGEST_SESSION_MS, MAX_BAN_BATCH, type GatewayStateStore, type Revocation } from "../../src/ports/gateway-state.js";

const POLICY: RegulatorPolicy = { maxRetries: 2, findTimeMs: 120_000, banTimeMs: 300_000, userDelayMaxMs: 10_000, maxEntries: 1000 };

/** One database for several instances: rows with the time they were recorded; `down` makes every call fail. */
function memoryDatabase() {
  const rows: { at: number; revocation?: Revocation; ban?: Ban }[] = [];
  let now = 0;
  let down = false;
  const fail = () => {
    if (down) throw new GatewayStateUnavailable("the shared state in postgres://db/otpgate cannot be reached (connect ECONNREFUSED)");
  };
  const store = (): GatewayStateStore => ({
    where: "postgres://db/otpgate",
    async revoke(revocation) {
      fail();
      rows.push({ at: now, revocation });
    },
    async bans(bans) {
      fail();
      for (const ban of bans) rows.push({ at: now, ban });
    },
    async changes(cursor, at) {
      fail();
      const fresh = rows.filter((r) => cursor === null || r.at >= cursor);
      return {
        revocations: fresh.flatMap((r) => (r.revocation && r.revocation.until > at ? [r.revocation] : [])),
        bans: fresh.flatMap((r) => (r.ban && r.ban.until > at ? [r.ban] : [])),
        cursor: now,
      };
    },
    async prune() {
      fail();
    },
    async close() {},
  });
  return {
    rows,
    store,
    setNow: (t: number) => void (now = t),
    setDown: (d: boolean) => void (down = d),
  };
}

function instance(db: ReturnType<typeof memoryDatabase>, clock: { t: number }) {
  const logs: Record<string, unknown>[] = [];
  const shared = createSharedState({ store: db.store(), clock: { nowMs: () => clock.t }, log: (e) => void logs.push(e), absoluteMs: 12 * 3_600_000 });
  const regulator = new Regulator(POLICY, shared.publishBan);
  shared.attachRegulator(regulator);
  return { shared, regulator, logs };
}

const settle = () => new Promise((r) => setImmediate(r));

test("a ban decided on A is published and refused on B after B's next poll; B's own copy is not published again", async () => {
  const clock = { t: 1_000_000 };
  const db = memoryDatabase();
  db.setNow(clock.t);
  const a = instance(db, clock);
  const b = instance(db, clock);
  assert.ok(await a.shared.sync());
  assert.ok(await b.shared.sync());
  const attempt = { subject: "user:alice", address: "203.0.113.9" };
  for (let i = 0; i < 3; i++) a.regulator.fail(attempt, clock.t);
  await settle();
  assert.equal(db.rows.length, 0, "bans are written with A's next poll, not one statement each at once (RT-B F1)");
  assert.ok(await a.shared.sync());
  assert.deepEqual(
    db.rows.map((r) => r.ban?.kind),
    ["pair", "address"],
  );
  assert.equal(b.regulator.admit(attempt, clock.t).kind, "allowed", "not before B polls");
  assert.ok(await b.shared.sync());
  const refused = b.regulator.admit(attempt, clock.t + 1);
  assert.equal(refused.kind, "banned");
  assert.equal(refused.kind === "banned" && refused.retryAfterMs, POLICY.banTimeMs - 1, "the ban ends when A's ends");
  assert.equal(b.regulator.admit({ subject: "user:bob", address: "203.0.113.9" }, clock.t).kind, "banned", "the address ban too");
  await settle();
  assert.equal(db.rows.length, 2, "applyBan does not publish");
  assert.equal(b.regulator.admit(attempt, clock.t + POLICY.banTimeMs).kind, "allowed", "over when it ends");
});

test("applyBan keeps a longer ban, ignores an expired one, and refuses keys no attempt could have", () => {
  const r = new Regulator(POLICY);
  r.applyBan({ kind: "address", address: "198.51.100.1", until: 5000 }, 1000);
  r.applyBan({ kind: "address", address: "198.51.100.1", until: 2000 }, 1000);
  const a = r.admitAddress("198.51.100.1", 1000);
  assert.equal(a.kind === "banned" && a.retryAfterMs, 4000);
  r.applyBan({ kind: "address", address: "198.51.100.2", until: 900 }, 1000);
  assert.equal(r.admitAddress("198.51.100.2", 1000).kind, "allowed");
  assert.equal(r.size, 1);
  assert.throws(() => r.applyBan({ kind: "pair", subject: "user:a\u0000b", address: "x", until: 9e12 }, 0), /control characters/);
  assert.equal(r.size, 1, "nothing stored for a refused key");
});

test("revocations of another instance arrive at the next poll and tell the sessions to reload", async () => {
  const clock = { t: 5_000_000 };
  const db = memoryDatabase();
  db.setNow(clock.t);
  const a = instance(db, clock);
  const b = instance(db, clock);
  let changed = 0;
  b.shared.onChange(() => changed++);
  await a.shared.store.revokeSession("sid-aaaaaaaaaaaaaaaaaaaa", clock.t + 60_000, clock.t);
  await a.shared.store.revokeUser("alice", clock.t);
  assert.equal(a.shared.store.read().state.validAfter.get("alice"), clock.t, "A knows at once");
  assert.equal(b.shared.store.read().state.revoked.size, 0);
  assert.ok(await a.shared.sync(), "A's writes are done by the end of its poll");
  assert.ok(await b.shared.sync());
  assert.equal(changed, 1);
  assert.equal(b.shared.store.read().state.revoked.get("sid-aaaaaaaaaaaaaaaaaaaa"), clock.t + 60_000);
  assert.equal(b.shared.store.read().state.validAfter.get("alice"), clock.t);
  const user = db.rows.find((r) => r.revocation?.kind === "user")!.revocation!;
  assert.equal(user.until, clock.t + LONGEST_SESSION_MS, "kept as long as a session could live on any instance (RT-B F4: not this instance's 12 h)");
});

test("the database down: available until STALE_AFTER_MS after the last poll, then fail closed with one log line; a logout meanwhile is kept and written when it is back", async () => {
  const clock = { t: 9_000_000 };
  const db = memoryDatabase();
  db.setNow(clock.t);
  const a = instance(db, clock);
  assert.ok(await a.shared.sync());
  const last = clock.t;
  db.setDown(true);
  clock.t += 1000;
  assert.equal(await a.shared.sync(), false);
  assert.equal(a.shared.available(clock.t), true, "a blip is not an outage");
  assert.equal(a.logs.length, 0);
  // A logout while it is down: refused by this instance at once, queued for the database.
  await a.shared.store.revokeSession("sid-bbbbbbbbbbbbbbbbbbbb", clock.t + 60_000, clock.t);
  assert.equal(a.shared.store.read().state.revoked.has("sid-bbbbbbbbbbbbbbbbbbbb"), true);
  clock.t = last + STALE_AFTER_MS + 1;
  assert.equal(await a.shared.sync(), false);
  assert.equal(a.shared.available(clock.t), false, "fail closed");
  assert.match(a.shared.unavailableMessage(), /has not answered for 10 s \(the shared state in postgres:\/\/db\/otpgate cannot be reached/);
  clock.t += 1000;
  await a.shared.sync();
  assert.equal(a.logs.length, 1, "one line for the outage");
  assert.match(String(a.logs[0]!.message), /every session is refused until it answers \(fail closed\)/);
  assert.equal(db.rows.length, 0);
  db.setDown(false);
  assert.ok(await a.shared.sync());
  assert.equal(a.shared.available(clock.t), true);
  assert.deepEqual(
    db.rows.map((r) => r.revocation),
    [{ kind: "session", sid: "sid-bbbbbbbbbbbbbbbbbbbb", until: last + 1000 + 60_000 }],
    "written when it answered again",
  );
  assert.deepEqual(a.logs[1], { event: "shared-state", result: "reachable", where: "postgres://db/otpgate" });
});

test("never answered since the start: not available, and the message says so", async () => {
  const db = memoryDatabase();
  db.setDown(true);
  const a = instance(db, { t: 1 });
  assert.equal(await a.shared.sync(), false);
  assert.equal(a.shared.available(1), false);
  assert.match(a.shared.unavailableMessage(), /has not answered since the start/);
});

const BASE = "public_url: https://app.example.com\n";
function problemsOf(yaml: string): readonly ConfigProblem[] {
  try {
    parseGatewayConfig(BASE + yaml);
  } catch (err) {
    if (err instanceof GatewayConfigError) return err.problems;
    throw err;
  }
  return [];
}

test("store: a postgres:// URL without a password; store_password_file only with it", () => {
  const ok = parseGatewayConfig(`${BASE}store: postgres://gw@db.example.com:5432/otpgate?sslmode=verify-full\nstore_password_file: /etc/otpgate/gw-db.password\n`);
  assert.equal(ok.store, "postgres://gw@db.example.com:5432/otpgate?sslmode=verify-full");
  assert.equal(ok.storePasswordFile, "/etc/otpgate/gw-db.password");
  assert.equal(parseGatewayConfig(BASE).store, null);
  assert.deepEqual(problemsOf("store: postgres://gw:hunter2@db/otpgate\n"), [
    { path: "store", message: "must not carry the password (the configuration is not the place for it): put it in store_password_file" },
  ]);
  assert.doesNotMatch(JSON.stringify(problemsOf("store: mysql://gw:hunter2@db/otpgate\n")), /hunter2/, "a password is never echoed");
  assert.match(problemsOf("store: postgres://gw@db/otpgate?password=x\n")[0]!.message, /must not carry the password/);
  assert.match(problemsOf("store_password_file: /etc/otpgate/p\n")[0]!.message, /goes with store: postgres:/);
  assert.match(problemsOf("store: postgres://gw@db/otpgate\nstore_password_file: relative\n")[0]!.message, /absolute path/);
});

test("bans waiting to be written (RT-B F1): one per key (the longest kept), at most MAX_PENDING_BANS (the oldest dropped, counted, logged), written in batches of MAX_BAN_BATCH, one batch per poll", async () => {
  const clock = { t: 20_000_000 };
  const db = memoryDatabase();
  db.setNow(clock.t);
  const a = instance(db, clock);
  const statements: number[] = [];
  const store = db.store();
  const shared = createSharedState({
    store: { ...store, bans: async (list) => void (statements.push(list.length), await store.bans(list)) },
    clock: { nowMs: () => clock.t },
    log: (e) => void a.logs.push(e),
  });
  shared.publishBan({ kind: "address", address: "198.51.100.1", until: clock.t + 1000 });
  shared.publishBan({ kind: "address", address: "198.51.100.1", until: clock.t + 5000 });
  shared.publishBan({ kind: "address", address: "198.51.100.1", until: clock.t + 2000 });
  for (let i = 0; i < MAX_PENDING_BANS + 5; i++) shared.publishBan({ kind: "pair", subject: `user:u${i}`, address: "203.0.113.7", until: clock.t + 300_000 });
  assert.equal(db.rows.length, 0, "nothing written before a poll");
  assert.ok(await shared.sync());
  assert.deepEqual(statements, [MAX_BAN_BATCH], "one statement per poll");
  const dropped = a.logs.filter((e) => e["result"] === "bans-dropped");
  assert.equal(dropped.length, 1);
  assert.equal(dropped[0]!["count"], 6, "the oldest dropped first: the coalesced address ban and five pair bans");
  assert.match(String(dropped[0]!["message"]), /6 ban\(s\) were not written to postgres:\/\/db\/otpgate \(more than 10000 waiting, the oldest dropped first\); they hold on this instance only/);
  assert.equal(db.rows[0]!.ban!.kind === "pair" && db.rows[0]!.ban!.subject, "user:u5", "written oldest first, after the dropped ones");
  while (statements.length < 5) {
    clock.t += 1000;
    assert.ok(await shared.sync());
  }
  assert.deepEqual(statements, [MAX_BAN_BATCH, MAX_BAN_BATCH, MAX_BAN_BATCH, MAX_BAN_BATCH, MAX_BAN_BATCH]);
  assert.equal(db.rows.length, MAX_PENDING_BANS, "each waiting ban written once");
  clock.t += 1000;
  assert.ok(await shared.sync());
  assert.equal(statements.length, 5, "nothing left to write");
});

test("writes that time out while reads work (RT-B F1): every poll is healthy, one log line, the bans are written once writes work again", async () => {
  const clock = { t: 30_000_000 };
  const db = memoryDatabase();
  db.setNow(clock.t);
  const store = db.store();
  let writes = false;
  const logs: Record<string, unknown>[] = [];
  const shared = createSharedState({
    store: {
      ...store,
      bans: async (list) => {
        if (!writes) throw new GatewayStateUnavailable("the shared state in postgres://db/otpgate cannot be reached (timeout exceeded when trying to connect)");
        await store.bans(list);
      },
    },
    clock: { nowMs: () => clock.t },
    log: (e) => void logs.push(e),
  });
  shared.publishBan({ kind: "address", address: "198.51.100.9", until: clock.t + 300_000 });
  for (let i = 0; i < 15; i++) {
    assert.ok(await shared.sync(), "the read succeeded: healthy");
    clock.t += 1000;
  }
  assert.equal(shared.available(clock.t), true, "never fails closed for a write");
  assert.equal(db.rows.length, 0);
  assert.deepEqual(
    logs.map((l) => l["result"]),
    ["write-failed"],
  );
  assert.match(String(logs[0]!["message"]), /timeout exceeded.*answers reads but not writes: logouts and bans of this instance hold here/);
  writes = true;
  assert.ok(await shared.sync());
  assert.equal(db.rows.length, 1, "written when writes work");
  assert.deepEqual(logs.at(-1), { event: "shared-state", result: "writable", where: "postgres://db/otpgate" });
});
