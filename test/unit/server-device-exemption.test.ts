// Server side of the device exemption (red team RT-B, F2). In-process, fixed clock, a memory store.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rig, totp, wrongCode } from "../helpers/decide-rig.js";

// The gateway exempts an attempt that carries the owner's device cookie from per-user pacing (red
// team RT-B, F2). The server regulates "ignore" decides too, so without the same exemption there
// the owner's right code would be refused as rate-limited while an attacker's paced guesses hold
// the server's slot. The gateway says so with `device: true`; the server grants it within one
// failure budget per user (max_retries failures, then none for ban_time), so a compromised
// gateway that claims it on every decide gains at most that many guesses.

/** The attacker's guesses, admitted one per delay from rotating addresses, driving alice to the 10 s cap; returns the time of the last (it holds the slot). */
async function attack(service: ReturnType<typeof rig>["service"], advance: (ms: number) => number, now: () => number): Promise<void> {
  for (let i = 0; i < 13; i++) {
    const r = await service.decide({ user: "alice", code: wrongCode(now(), i), service: "gateway", clientAddress: `203.0.113.${i}`, rateLimit: "ignore" });
    assert.deepEqual(r, { outcome: "rejected", reason: "wrong" }, `guess ${i} was decided`);
    if (i < 12) advance(11_000);
  }
  advance(100);
}

test("RT-B F2: with device (the gateway checked the owner's device cookie) the owner's right code is decided while the attacker holds the slot; without it, rate-limited", async () => {
  const { service, advance, now } = rig();
  await attack(service, advance, now);
  const plain = await service.decide({ user: "alice", code: totp(now()), service: "gateway", clientAddress: "192.0.2.77", rateLimit: "ignore" });
  assert.deepEqual(plain, { outcome: "rejected", reason: "rate-limited" }, "without the device claim, paced");
  const withDevice = { user: "alice", code: totp(now()), service: "gateway", clientAddress: "192.0.2.77", rateLimit: "ignore" as const, device: true };
  const owner = await service.decide(withDevice);
  assert.equal(owner.outcome, "accepted", `the owner's right code with the device claim: ${JSON.stringify(owner)}`);
});

test("RT-B F2: a gateway that claims device on every decide gets at most max_retries more guesses per user, then is paced", async () => {
  const { service, advance, now } = rig();
  let decided = 0;
  for (let i = 0; i < 600; i++) {
    const req = { user: "alice", code: wrongCode(now(), i), service: "gateway", clientAddress: `198.51.100.${i % 250}`, rateLimit: "ignore" as const, device: true };
    const r = await service.decide(req);
    if (!(r.outcome === "rejected" && r.reason === "rate-limited")) decided++;
    advance(100);
  }
  assert.ok(decided <= 15 + 5, `at most a handful plus max_retries of the 600 guesses were decided within the minute, not ${decided}`);
});

test("RT-B F2: the socket's decide reader takes device as a boolean only", async () => {
  const { readDecide } = await import("../../src/adapters/server/wire.js");
  const base = { user: "alice", code: "123456", service: "gateway", rateLimit: "ignore" };
  assert.equal(readDecide({ ...base, device: true }).device, true);
  assert.throws(() => readDecide({ ...base, device: "yes" }));
});
