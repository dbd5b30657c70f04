// The per-user pools' bookkeeping (app-pools.ts, red team 1, F9) with a fixed clock and fake pools:
// one pool per user, a separate one for requests without a user, a least-recently-used cap that
// never closes a pool with a request in flight (AppPoolsFull instead), idle pools closed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AppPoolsFull, createUserPools, type UserPools } from "../../src/adapters/http/app-pools.js";

interface FakePool {
  readonly id: number;
  readonly user: string | null;
  closed: boolean;
}

function rig(maxPools: number, idleMs = 10_000): { pools: UserPools<FakePool>; created: FakePool[]; clock: { now: number } } {
  const clock = { now: 1_800_000_000_000 };
  const created: FakePool[] = [];
  const pools = createUserPools<FakePool>({
    maxPools,
    idleMs,
    now: () => clock.now,
    timer: false,
    create: (user) => {
      const p = { id: created.length, user, closed: false };
      created.push(p);
      return p;
    },
    close: async (p) => void (p.closed = true),
  });
  return { pools, created, clock };
}

test("each user has a pool of their own; the same user gets the same pool; requests without a user never share a user's pool", () => {
  const { pools, created } = rig(10);
  const a1 = pools.acquire("alice");
  const b = pools.acquire("bob");
  const a2 = pools.acquire("alice");
  const anon = pools.acquire(null);
  // Names that could be confused with "no user" are users like any other.
  const empty = pools.acquire("");
  const named = pools.acquire("null");
  assert.equal(a1.pool, a2.pool);
  assert.equal(new Set([a1.pool, b.pool, anon.pool, empty.pool, named.pool]).size, 5);
  assert.deepEqual(
    created.map((p) => p.user),
    ["alice", "bob", null, "", "null"],
  );
  assert.equal(pools.size, 5);
});

test("at the cap, a new user's pool replaces the least recently used one with nothing in flight", () => {
  const { pools, created } = rig(2);
  pools.acquire("alice").release();
  pools.acquire("bob").release();
  pools.acquire("alice").release(); // alice is now the most recently used
  const carol = pools.acquire("carol");
  assert.deepEqual(
    created.map((p) => [p.user, p.closed]),
    [
      ["alice", false],
      ["bob", true],
      ["carol", false],
    ],
  );
  assert.equal(pools.size, 2);
  // bob comes back: a new pool (never the closed one), replacing alice (carol has a request in flight).
  const bob = pools.acquire("bob");
  assert.notEqual(bob.pool, created[1]);
  assert.equal(created[0]!.closed, true, "alice's pool closed");
  assert.equal(carol.pool.closed, false, "a pool with a request in flight is never closed");
});

test("when every pool has a request in flight, a new user is refused with AppPoolsFull and nothing changes; a released request makes room", () => {
  const { pools, created } = rig(2);
  const a = pools.acquire("alice");
  const b = pools.acquire("bob");
  assert.throws(
    () => pools.acquire("carol"),
    (err: unknown) => err instanceof AppPoolsFull && /requests in flight at the app for 2 users at once .*try again in a moment/.test(err.message),
  );
  assert.equal(created.length, 2, "no pool was created for carol");
  assert.equal(pools.size, 2);
  assert.ok(created.every((p) => !p.closed));
  // Users who have a pool are still served.
  pools.acquire("alice").release();
  b.release();
  b.release(); // idempotent: bob's count does not go below zero
  const c = pools.acquire("carol");
  assert.equal(c.pool.user, "carol");
  assert.equal(created[1]!.closed, true, "bob's pool (nothing in flight) made room");
  assert.equal(a.pool.closed, false);
});

test("a double release does not let a pool with another request in flight be closed", () => {
  const { pools, created } = rig(1);
  const first = pools.acquire("alice");
  const second = pools.acquire("alice");
  first.release();
  first.release();
  assert.throws(() => pools.acquire("bob"), AppPoolsFull);
  second.release();
  pools.acquire("bob");
  assert.equal(created[0]!.closed, true);
});

test("a pool with nothing in flight for idleMs is closed by sweep(); busy pools and recently used ones stay; the anonymous pool too", () => {
  const { pools, created, clock } = rig(10, 10_000);
  pools.acquire("alice").release();
  const busy = pools.acquire("bob");
  pools.acquire(null).release();
  clock.now += 6_000;
  pools.acquire("carol").release();
  clock.now += 4_000;
  assert.equal(pools.sweep(), 2, "alice and the anonymous pool, idle for 10 s");
  assert.deepEqual(
    created.map((p) => [p.user, p.closed]),
    [
      ["alice", true],
      ["bob", false],
      [null, true],
      ["carol", false],
    ],
  );
  clock.now += 60_000;
  busy.release(); // bob's long request ends: idle from now
  assert.equal(pools.sweep(), 1, "carol only");
  clock.now += 10_000;
  assert.equal(pools.sweep(), 1, "bob, 10 s after his request ended");
  assert.equal(pools.size, 0);
});

test("close() closes every pool; nothing is handed out afterwards", async () => {
  const { pools, created } = rig(10);
  pools.acquire("alice");
  pools.acquire(null);
  await pools.close();
  assert.ok(created.every((p) => p.closed));
  assert.equal(pools.size, 0);
  assert.throws(() => pools.acquire("alice"), /closed/);
});
