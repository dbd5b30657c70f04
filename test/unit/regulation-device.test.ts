// The device exemption in the regulator (red team RT-B, F2), fixed clock: an attempt with a device
// the caller vouches for skips the user's pacing and in-flight cap, within a failure budget of its
// own that parallel attempts cannot overrun, that a flood of other keys cannot evict, and that
// only a success refills.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_DEVICES, RegulationKeyError, Regulator, type RegulatorPolicy, type Reservation, type Ticket } from "../../src/core/web/index.js";

const POLICY: RegulatorPolicy = { maxRetries: 5, findTimeMs: 120_000, banTimeMs: 300_000, userDelayMaxMs: 10_000, maxEntries: 1000 };
const PHONE = "alices-phone-000001";
const ticketOf = (r: Reservation): Ticket => {
  assert.equal(r.kind, "allowed", JSON.stringify(r));
  return (r as { ticket: Ticket }).ticket;
};

/** alice slowed to the cap, and an attacker's attempt holding the pacing slot at `now`. */
function underAttack(now: number): Regulator {
  const r = new Regulator(POLICY);
  for (let i = 0; i < 12; i++) r.settle(ticketOf(r.begin({ subject: "user:alice", address: `203.0.113.${i}` }, now - (12 - i) * 11_000)), now - (12 - i) * 11_000, "guess");
  r.settle(ticketOf(r.begin({ subject: "user:alice", address: "203.0.113.99" }, now)), now, "guess");
  assert.equal(r.begin({ subject: "user:alice", address: "198.51.100.1" }, now + 1).kind, "slow", "the slot is held");
  return r;
}

test("with a device: max_retries exempt failures, then paced like anyone until the lockout ends; the lockout spans no window a thief can wait out", () => {
  const now = 1_000_000;
  const r = underAttack(now);
  const kinds: string[] = [];
  const times = [0, 1, 2, 3, 4].map((i) => now + 100 + i * 130_000); // further apart than find_time: spacing guesses out refills nothing
  const lockedAt = times[4]!;
  times.push(lockedAt + 1000, lockedAt + POLICY.banTimeMs - 1000);
  for (const [i, t] of times.entries()) {
    const res = r.begin({ subject: "user:alice", address: `192.0.2.${i}`, device: PHONE }, t);
    kinds.push(res.kind === "allowed" ? (res.ticket.exempt ? "exempt" : "paced") : res.kind);
    if (res.kind === "allowed") r.settle(res.ticket, t, "guess");
  }
  assert.deepEqual(kinds.slice(0, 5), ["exempt", "exempt", "exempt", "exempt", "exempt"]);
  assert.ok(!kinds.slice(5).includes("exempt"), `the sixth and seventh are not exempt: ${kinds.join(" ")}`);
  assert.equal(r.deviceLockedOut("user:alice", PHONE, lockedAt + POLICY.banTimeMs - 1), true);
  assert.equal(r.deviceLockedOut("user:alice", PHONE, lockedAt + POLICY.banTimeMs), false, "the lockout ends ban_time after the failure that caused it");
});

test("parallel attempts with one device cannot overrun its budget: those in flight count", () => {
  const now = 1_000_000;
  const r = underAttack(now);
  const results = Array.from({ length: 10 }, (_, i) => r.begin({ subject: "user:alice", address: `192.0.2.${i}`, device: PHONE }, now + 100));
  const exempt = results.filter((res) => res.kind === "allowed" && res.ticket.exempt);
  assert.equal(exempt.length, POLICY.maxRetries, "exactly max_retries exempt in flight");
  assert.ok(
    results.filter((res) => !(res.kind === "allowed" && res.ticket.exempt)).every((res) => res.kind === "slow" || (res.kind === "busy" && res.key === "subject")),
    "the rest are paced like anyone (the slot is held, the user's in-flight cap is full)",
  );
  // A refund gives the budget back; a guess spends it.
  for (const res of exempt) r.settle((res as { ticket: Ticket }).ticket, now + 200, "refund");
  assert.equal(ticketOf(r.begin({ subject: "user:alice", address: "192.0.2.50", device: PHONE }, now + 300)).exempt, true);
});

test("a success with the device refills its budget (the owner's typos do not add up); a device is counted per user", () => {
  const now = 1_000_000;
  const r = underAttack(now);
  for (let i = 0; i < 4; i++) r.settle(ticketOf(r.begin({ subject: "user:alice", address: `192.0.2.${i}`, device: PHONE }, now + i)), now + i, "guess");
  r.settle(ticketOf(r.begin({ subject: "user:alice", address: "192.0.2.9", device: PHONE }, now + 10)), now + 10, "success");
  for (let i = 0; i < 5; i++) assert.equal(ticketOf(r.begin({ subject: "user:alice", address: `192.0.2.${20 + i}`, device: PHONE }, now + 20 + i)).exempt, true);
  // The same id for another subject has a budget of its own (callers only pass a device issued to that user).
  assert.equal(ticketOf(r.begin({ subject: "user:bob", address: "192.0.2.99", device: PHONE }, now + 30)).exempt, true);
});

test("a flood of other keys does not evict a device's lockout (its own map), and device ids are checked", () => {
  const now = 1_000_000;
  const r = underAttack(now);
  for (let i = 0; i < 5; i++) r.settle(ticketOf(r.begin({ subject: "user:alice", address: `192.0.2.${i}`, device: PHONE }, now + i)), now + i, "guess");
  assert.equal(r.deviceLockedOut("user:alice", PHONE, now + 10), true);
  for (let p = 0; p < 5000; p++) {
    const res = r.begin({ subject: `user:x${p}`, address: `2001:db8:beef:${p.toString(16)}::` }, now + 10);
    if (res.kind === "allowed") r.settle(res.ticket, now + 10, "guess");
  }
  assert.ok(r.size <= POLICY.maxEntries);
  assert.equal(r.deviceLockedOut("user:alice", PHONE, now + 10), true, "still locked out after 10,000 new keys in a map of 1,000");
  assert.ok(MAX_DEVICES >= 1000);
  for (const bad of ["short", "x".repeat(65), "has space in it 0000", "a\u0000bcdefghijklmnopq"]) {
    const before = r.size;
    assert.throws(() => r.begin({ subject: "user:alice", address: "192.0.2.1", device: bad }, now), RegulationKeyError, JSON.stringify(bad));
    assert.equal(r.size, before, "nothing changed");
    assert.equal(r.attemptsInFlight, 0);
  }
});
