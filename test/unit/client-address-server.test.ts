// The decision service regulates gateway decides per user and per client address (RT-B F3: without an address).
import assert from "node:assert/strict";
import { test } from "node:test";
import { rig, totp, wrongCode } from "../helpers/decide-rig.js";

// RT-B F3 on the server side: the gateway names no client address when its proxy did not say who
// the client is; such decides must not share one "unknown" key that a few failures would ban.
test("decides without a client address are counted per request: failures of one unknown client do not ban the next", async () => {
  const { service, advance, now } = rig();
  for (let i = 0; i < 6; i++) {
    const r = await service.decide({ user: "alice", code: wrongCode(now(), i), service: "gateway", rateLimit: "ignore" });
    assert.equal(r.outcome, "rejected", String(i));
    advance(11_000);
  }
  // The per-user slow-down is over (find_time without a failure); an address or pair ban would still hold.
  advance(150_000);
  assert.deepEqual(await service.decide({ user: "alice", code: totp(now()), service: "gateway", rateLimit: "ignore" }), { outcome: "accepted", via: "totp" });
});
