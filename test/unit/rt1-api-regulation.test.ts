// Red team rt1, note (d): /v1/decide with rateLimit "ignore" skips the state file's RATE_LIMIT,
// so any member of the socket group (a compromised gateway) could guess codes without limit (600
// wrong codes in 3.4 s). The decision service now regulates such decides per user across all
// client addresses (core/web/regulation.ts). In-process, fixed clock, a memory store.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DecideReply } from "../../src/ports/decision-service.js";
import { rig, totp, wrongCode } from "../helpers/decide-rig.js";

test('(d) "ignore" decides are bounded per user across addresses: a burst of guesses is refused after the first failures, only a few a minute get through', async () => {
  const { service, logs, advance, now } = rig();
  let decided = 0;
  const replies: DecideReply[] = [];
  // 600 guesses within one minute from 600 addresses (what a compromised gateway could send).
  for (let i = 0; i < 600; i++) {
    const r = await service.decide({ user: "alice", code: wrongCode(now(), i), service: "gateway", clientAddress: `198.51.100.${i % 250}`, rateLimit: "ignore" });
    replies.push(r);
    if (!(r.outcome === "rejected" && r.reason === "rate-limited")) decided++;
    advance(100);
  }
  assert.ok(decided <= 15, `at most a handful of the 600 guesses were decided within the minute, not ${decided}`);
  assert.ok(logs.includes("decide:rejected:regulated"), "the refusals are logged");
});

test("(d) the owner's right code still gets through after the pause", async () => {
  const { service, advance, now } = rig();
  for (let i = 0; i < 30; i++) {
    await service.decide({ user: "alice", code: wrongCode(now(), i), service: "gateway", clientAddress: `203.0.113.${i}`, rateLimit: "ignore" });
    advance(50);
  }
  advance(11_000);
  const r = await service.decide({ user: "alice", code: totp(now()), service: "gateway", clientAddress: "192.0.2.77", rateLimit: "ignore" });
  assert.equal(r.outcome, "accepted");
});

test('(d) "apply" decides are not regulated here (RATE_LIMIT in the state file applies)', async () => {
  const { service, advance, now } = rig();
  let regulated = 0;
  for (let i = 0; i < 40; i++) {
    const r = await service.decide({ user: "alice", code: wrongCode(now(), i), service: "radius", clientAddress: "127.0.0.1" });
    if (r.outcome === "rejected" && r.reason === "rate-limited") regulated++;
    advance(10);
  }
  assert.equal(regulated, 0);
});
