// Brute-force regulation (issue 9, item 5) with fixed clocks: what bans, what only slows, what is
// never counted, and that memory and work per attempt stay bounded under a flood.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_IN_FLIGHT_ADDRESS, MAX_IN_FLIGHT_SUBJECT, MAX_REGULATION_KEY, RegulationKeyError, Regulator, USER_DELAY_BASE_MS, type RegulatorPolicy, type Ticket } from "../../src/core/web/index.js";

const POLICY: RegulatorPolicy = { maxRetries: 5, findTimeMs: 120_000, banTimeMs: 300_000, userDelayMaxMs: 10_000, maxEntries: 1000 };
const at = (subject: string, address: string) => ({ subject, address });
const keysOf = (r: Regulator) => [...(r as unknown as { entries: Map<string, unknown> }).entries.keys()];
const internals = (r: Regulator) => (r as unknown as { entries: Map<string, { count: number }> }).entries;

test("six wrong codes from six addresses do not lock the owner out: the seventh address gets in after a delay", () => {
  const r = new Regulator(POLICY);
  for (let i = 1; i <= 6; i++) {
    const a = at("user:alice", `203.0.113.${i}`);
    assert.equal(r.admit(a, 1000 + i).kind, "allowed");
    assert.deepEqual(r.fail(a, 1000 + i), { banned: [] }, "one failure per address bans nothing");
  }
  const owner = r.admit(at("user:alice", "198.51.100.7"), 2000);
  assert.deepEqual(owner, { kind: "allowed", delayMs: 2 * USER_DELAY_BASE_MS }, "slowed (6 failures: 250 ms doubled once), not banned");
  r.succeed(at("user:alice", "198.51.100.7"));
  assert.deepEqual(r.admit(at("user:alice", "198.51.100.7"), 2001), { kind: "allowed", delayMs: 0 }, "a success clears the slow-down");
});

test("the per-user delay doubles from 250 ms and stops at userDelayMaxMs; it ends with the find time", () => {
  const r = new Regulator(POLICY);
  const delays: number[] = [];
  for (let i = 0; i < 12; i++) {
    delays.push(r.delayOf("user:bob", 10));
    r.fail(at("user:bob", `10.0.${i}.1`), 10);
  }
  assert.deepEqual(delays, [0, 0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 8000, 10_000]);
  assert.equal(r.delayOf("user:bob", 10 + 119_999), 10_000);
  assert.equal(r.delayOf("user:bob", 10 + 120_000), 0, "the window has passed");
  assert.equal(r.admit(at("user:bob", "10.0.0.1"), 11).kind, "allowed", "the user is never banned, only slowed");
});

test("per (user, address) and per address: more than max_retries failures ban for ban_time", () => {
  const r = new Regulator(POLICY);
  const a = at("user:carol", "203.0.113.9");
  for (let i = 0; i < 5; i++) assert.deepEqual(r.fail(a, 1000 + i), { banned: [] });
  assert.deepEqual(r.fail(a, 2000), { banned: ["pair", "address"] }, "the 6th failure within find_time bans the pair and the address");
  assert.deepEqual(r.admit(a, 2000 + 299_999), { kind: "banned", key: "pair", retryAfterMs: 1 });
  assert.deepEqual(r.admit(at("user:dave", "203.0.113.9"), 2000), { kind: "banned", key: "address", retryAfterMs: 300_000 }, "the address is banned for every user");
  assert.equal(r.admit(at("user:carol", "198.51.100.1"), 2000).kind, "allowed", "the owner elsewhere is not");
  assert.equal(r.admit(a, 2000 + 300_000).kind, "allowed", "the ban ends");
  // Many users from one address: the address bans even though no pair reaches the limit.
  const s = new Regulator(POLICY);
  for (let i = 0; i < 5; i++) s.fail(at(`user:u${i}`, "192.0.2.1"), i);
  assert.deepEqual(s.fail(at("user:u5", "192.0.2.1"), 5), { banned: ["address"] });
  // Failures spread wider than find_time never ban.
  const slow = new Regulator(POLICY);
  for (let i = 0; i < 20; i++) assert.deepEqual(slow.fail(at("user:erin", "192.0.2.2"), i * 30_000), { banned: [] }, `failure ${i}`);
});

test("nothing is counted while banned: banned attempts neither count nor extend the ban", () => {
  const r = new Regulator(POLICY);
  const a = at("user:frank", "203.0.113.50");
  for (let i = 0; i < 6; i++) r.fail(a, i);
  const before = JSON.stringify([...internals(r)]);
  for (let t = 290_000; t < 290_010; t++) {
    assert.equal(r.admit(a, t).kind, "banned");
    assert.deepEqual(r.fail(a, t), { banned: [] }, "a failure passed in while banned is ignored");
  }
  assert.equal(JSON.stringify([...internals(r)]), before, "no counter changed during the ban");
  assert.equal(r.admit(a, 300_005).kind, "allowed", "the ban was not extended");
  assert.deepEqual(r.fail(a, 300_010), { banned: [] }, "the first failure after the ban does not ban again");
});

test("a success clears the user's counters, not the address's", () => {
  const r = new Regulator(POLICY);
  for (let i = 0; i < 5; i++) r.fail(at("user:victim", "192.0.2.7"), i);
  r.succeed(at("user:mallory", "192.0.2.7")); // the attacker signs in to their own account
  assert.deepEqual(r.fail(at("user:victim", "192.0.2.7"), 10), { banned: ["pair", "address"] });
});

test("names that are too long or carry control characters never become keys", () => {
  const r = new Regulator(POLICY);
  for (const subject of [`user:${"a".repeat(4096)}`, "", "user:a\u0000b", "user:\nroot", "x".repeat(MAX_REGULATION_KEY + 1)]) {
    assert.throws(() => r.fail(at(subject, "192.0.2.1"), 0), RegulationKeyError, JSON.stringify(subject.slice(0, 20)));
    assert.throws(() => r.admit(at(subject, "192.0.2.1"), 0), /cannot be a regulation key .*validate it first/);
  }
  assert.throws(() => r.fail(at("user:ok", "x".repeat(400)), 0), RegulationKeyError);
  assert.equal(r.size, 0, "nothing stored");
});

test("a flood of distinct addresses and users: entries stay under the cap and the cost per attempt stays flat", () => {
  const cap = 10_000;
  const r = new Regulator({ ...POLICY, maxEntries: cap });
  const round = (from: number, n: number): number => {
    const start = process.hrtime.bigint();
    for (let i = from; i < from + n; i++) {
      const a = at(`user:u${i}`, `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::`);
      r.admit(a, 1000);
      r.fail(a, 1000);
    }
    return Number(process.hrtime.bigint() - start) / n;
  };
  round(0, 20_000); // warm up (JIT)
  const early = Math.min(round(20_000, 20_000), round(40_000, 20_000));
  round(60_000, 100_000);
  const late = Math.min(round(160_000, 20_000), round(180_000, 20_000));
  assert.ok(r.size <= cap, `${r.size} entries, cap ${cap}`);
  assert.ok(late < early * 5 + 2000, `per attempt: ${early.toFixed(0)} ns early, ${late.toFixed(0)} ns after 200k distinct failures`);
  // The most recent keys are the ones kept.
  assert.equal(internals(r).get("s\u0000user:u199999")?.count, 1);
  assert.equal(internals(r).get("s\u0000user:u0"), undefined);
});

test("least recently used keys go first: a key that keeps failing stays", () => {
  const r = new Regulator({ ...POLICY, maxEntries: 30 });
  for (let i = 0; i < 100; i++) {
    r.fail(at("user:target", `10.1.${i}.1`), i);
    r.fail(at(`user:noise${i}`, `198.51.100.${i}`), i);
  }
  assert.ok(r.size <= 30);
  assert.ok(r.delayOf("user:target", 100) > 0, "the user attacked throughout is still slowed");
});

test("address-only failures (malformed forms) ban the address and touch no user", () => {
  const r = new Regulator(POLICY);
  for (let i = 0; i < 5; i++) assert.deepEqual(r.failAddress("192.0.2.9", i), { banned: [] });
  assert.deepEqual(r.failAddress("192.0.2.9", 5), { banned: ["address"] });
  assert.deepEqual(r.admitAddress("192.0.2.9", 6), { kind: "banned", key: "address", retryAfterMs: 299_999 });
  assert.equal(r.admit(at("user:alice", "192.0.2.9"), 6).kind, "banned", "a well-formed attempt from the address too");
  assert.deepEqual(r.failAddress("192.0.2.9", 7), { banned: [] }, "not counted while banned");
  assert.equal(r.size, 1, "only the address is stored");
  assert.throws(() => r.failAddress("", 0), RegulationKeyError);
});

const ticketOf = (r: ReturnType<Regulator["begin"]>): Ticket => {
  assert.equal(r.kind, "allowed", JSON.stringify(r));
  return (r as { ticket: Ticket }).ticket;
};

test("begin() reserves before any await: one attempt per pair in flight, and failures plus attempts in flight never exceed max_retries + 1", () => {
  const r = new Regulator(POLICY);
  const a = at("user:alice", "203.0.113.1");
  const first = ticketOf(r.begin(a, 0));
  assert.deepEqual(r.begin(a, 0), { kind: "busy", key: "pair" }, "a second attempt of the pair while the first is in flight");
  r.settle(first, 1, "guess");
  // Many users from one address in parallel: at most MAX_IN_FLIGHT_ADDRESS, and within the budget.
  const tickets: Ticket[] = [];
  for (let i = 0; i < 10; i++) {
    const res = r.begin(at(`user:u${i}`, "203.0.113.1"), 2);
    if (res.kind === "allowed") tickets.push(res.ticket);
    else assert.deepEqual(res, { kind: "busy", key: "address" });
  }
  assert.equal(tickets.length, MAX_IN_FLIGHT_ADDRESS);
  assert.equal(r.attemptsInFlight, MAX_IN_FLIGHT_ADDRESS);
  const banned = tickets.map((t) => r.settle(t, 3, "guess").banned);
  assert.deepEqual(banned.flat(), [], "five failures: no ban yet");
  const sixth = ticketOf(r.begin(at("user:z", "203.0.113.1"), 4));
  assert.deepEqual(r.begin(at("user:y", "203.0.113.1"), 4), { kind: "busy", key: "address" }, "5 failures + 1 in flight: the budget is spent");
  assert.deepEqual(r.settle(sixth, 5, "guess").banned, ["address"]);
  assert.equal(r.begin(at("user:y", "203.0.113.1"), 6).kind, "banned");
  assert.equal(r.attemptsInFlight, 0);
});

test("settle(): refund and address-only count nothing against the user; a ticket settles once; success clears (and trusts no address: RT-B F2)", () => {
  const r = new Regulator(POLICY);
  const t = ticketOf(r.begin(at("user:bob", "192.0.2.1"), 0));
  assert.deepEqual(r.settle(t, 0, "refund"), { banned: [] });
  assert.deepEqual(r.settle(t, 0, "guess"), { banned: [] }, "a second settle does nothing");
  assert.equal(r.size, 0, "nothing counted");
  const u = ticketOf(r.begin(at("user:bob", "192.0.2.1"), 1));
  r.settle(u, 1, "address");
  assert.deepEqual(keysOf(r), ["a\u0000192.0.2.1"]);
  const ok = ticketOf(r.begin(at("user:bob", "192.0.2.1"), 2));
  r.settle(ok, 2, "success");
  assert.deepEqual(keysOf(r), ["a\u0000192.0.2.1"], "nothing about the pair is kept in the LRU attackers feed");
  const again = ticketOf(r.begin(at("user:bob", "192.0.2.1"), 3));
  assert.equal(again.exempt, false, "an address is never exempt by itself");
});

test("pacing: once a user is slowed, attempts from all addresses together are at least the delay apart; the rest are 'slow', uncounted; a device is exempt", () => {
  const r = new Regulator(POLICY);
  for (let i = 0; i < 6; i++) r.settle(ticketOf(r.begin(at("user:carol", `10.0.${i}.1`), i)), i, "guess"); // delay 500 ms
  r.settle(ticketOf(r.begin(at("user:carol", "192.0.2.50"), 1000)), 1000, "success"); // the owner signed in once
  for (let i = 0; i < 6; i++) r.settle(ticketOf(r.begin(at("user:carol", `10.1.${i}.1`), 2000 + i * 600)), 2000 + i * 600, "guess");
  const now = 10_000;
  assert.equal(r.delayOf("user:carol", now), 500);
  const first = r.begin(at("user:carol", "198.51.100.1"), now);
  assert.equal(first.kind, "allowed");
  const before = JSON.stringify([...internals(r)]);
  assert.deepEqual(r.begin(at("user:carol", "198.51.100.2"), now + 499), { kind: "slow", retryAfterMs: 1 });
  assert.equal(JSON.stringify([...internals(r)]), before, "a paced refusal changes nothing");
  assert.equal(r.begin(at("user:carol", "192.0.2.50"), now + 1).kind, "slow", "the address the owner signed in from is paced like any other");
  const owner = r.begin({ ...at("user:carol", "192.0.2.50"), device: "carols-phone-0000001" }, now + 1);
  assert.equal(owner.kind === "allowed" && owner.ticket.exempt, true, "an attempt with the owner's device is not paced");
  assert.equal(r.begin(at("user:carol", "198.51.100.3"), now + 500).kind, "allowed", "the next untrusted attempt after the delay");
});

test("a user's in-flight cap does not apply to an attempt with a device: many attackers in flight cannot shut the owner out", () => {
  const r = new Regulator(POLICY);
  for (let i = 0; i < MAX_IN_FLIGHT_SUBJECT; i++) ticketOf(r.begin(at("user:dan", `203.0.113.${i}`), 1));
  assert.deepEqual(r.begin(at("user:dan", "203.0.113.200"), 1), { kind: "busy", key: "subject" });
  assert.deepEqual(r.begin(at("user:dan", "192.0.2.60"), 1), { kind: "busy", key: "subject" });
  assert.equal(r.begin({ ...at("user:dan", "192.0.2.60"), device: "dans-laptop-00000001" }, 1).kind, "allowed");
});

test("the slow-down lasts while failures keep coming (its window restarts with each failure)", () => {
  const r = new Regulator(POLICY);
  for (let i = 0; i < 30; i++) r.fail(at("user:erin", `10.2.${i}.1`), i * 10_000);
  assert.equal(r.delayOf("user:erin", 300_000), 10_000, "still at the cap after 5 minutes of failures every 10 s");
  assert.equal(r.delayOf("user:erin", 290_000 + 120_000), 0, "quiet for find_time: over");
});

test("recheck(): a ban set while an admitted attempt waited its slow-down refuses it", () => {
  const r = new Regulator(POLICY);
  const t = ticketOf(r.begin(at("user:f", "192.0.2.70"), 0));
  for (let i = 0; i < 6; i++) r.failAddress("192.0.2.70", 1);
  assert.equal(r.recheck(t, 2).kind, "banned");
});
