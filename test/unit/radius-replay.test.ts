// Replays (review 2, F3): a captured Access-Request sent again from other source ports, or with its
// User-Name changed, must never be decided or counted again: the request authenticator is
// remembered (bounded) for longer than a code window plus a rate-limit interval, whatever the source.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { RadiusLog } from "../../src/adapters/radius/log.js";
import { ACCESS_REJECT, buildAccessRequest } from "../../src/adapters/radius/packet.js";
import { radiusServer } from "../../src/adapters/radius/server.js";
import type { CachedAccount } from "../../src/platform/user-cache.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";

const SECRET = Buffer.from("unit-test-shared-secret-0002");
const NOW = 1_700_000_000_000;
const ALICE: CachedAccount = { name: "alice", uid: 1001, gid: 1001, home: "/home/alice", groups: [1001] };
const BOB: CachedAccount = { name: "bob", uid: 1002, gid: 1002, home: "/home/bob", groups: [1002] };

function harness() {
  let now = NOW;
  const state = `JBSWY3DPEHPK3PXP\n" RATE_LIMIT 3 30\n" HOTP_COUNTER 1\n`;
  const stores = new Map([
    ["alice", new MemoryAccountStore(state)],
    ["bob", new MemoryAccountStore(state)],
  ]);
  const sent: { packet: Buffer; port: number }[] = [];
  const server = radiusServer({
    secret: SECRET,
    send: (packet, port) => sent.push({ packet, port }),
    lookup: async (name) => (name === "alice" ? ALICE : name === "bob" ? BOB : null),
    storeFor: (account) => stores.get(account.name)!,
    clock: { nowMs: () => now },
    log: new RadiusLog({ nowMs: () => now, out: () => {} }),
    nullok: false,
    noSkewAdjust: true,
    rejectFloorMs: 0,
  });
  return { server, stores, state, sent, advance: (ms: number) => (now += ms) };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

test("a captured request replayed from 20 new source ports is decided once; the state is written once", async () => {
  const h = harness();
  const captured = buildAccessRequest(7, randomBytes(16), "alice", "000000", SECRET);
  h.server.handle(captured, { address: "127.0.0.1", port: 40000 });
  await settle();
  const afterFirst = h.stores.get("alice")!.current;
  assert.notEqual(afterFirst, h.state, "the first (legitimate) request was decided and written");
  for (let i = 1; i <= 20; i++) {
    h.advance(1000);
    h.server.handle(captured, { address: "127.0.0.1", port: 40000 + i });
    await settle();
  }
  assert.equal(h.server.counters.decided, 1, "decided once, however many source ports replay it");
  assert.equal(h.stores.get("alice")!.current, afterFirst, "no counter step or rate-limit stamp from the replays");
  assert.ok(
    h.sent.every((s) => s.port === 40000),
    "no answer to the replaying sockets",
  );
});

test("a replay with the User-Name changed (same authenticator: the password decodes the same) is dropped", async () => {
  const h = harness();
  const auth = randomBytes(16);
  h.server.handle(buildAccessRequest(7, auth, "alice", "000000", SECRET), { address: "127.0.0.1", port: 40000 });
  await settle();
  // Same authenticator and encrypted password, other user: what an attacker without the secret can build.
  const original = buildAccessRequest(7, auth, "alice", "000000", SECRET);
  const forged = buildAccessRequest(8, auth, "bob", "000000", SECRET);
  assert.deepEqual(forged.subarray(4, 20), original.subarray(4, 20));
  h.server.handle(forged, { address: "127.0.0.1", port: 41000 });
  await settle();
  assert.equal(h.stores.get("bob")!.current, h.state, "bob's state is untouched");
  assert.equal(h.server.counters.decided, 1);
});

test("a retransmission by the same socket gets the answer already given; replays are still refused 2 hours later", async () => {
  const h = harness();
  const captured = buildAccessRequest(9, randomBytes(16), "alice", "000000", SECRET);
  h.server.handle(captured, { address: "127.0.0.1", port: 40000 });
  await settle();
  h.advance(1000);
  h.server.handle(captured, { address: "127.0.0.1", port: 40000 });
  await settle();
  assert.equal(h.sent.length, 2);
  assert.ok(h.sent.every((s) => s.packet[0] === ACCESS_REJECT && s.packet.equals(h.sent[0]!.packet)));
  const afterFirst = h.stores.get("alice")!.current;
  h.advance(2 * 3600_000);
  h.server.handle(captured, { address: "10.0.0.9", port: 50000 });
  h.server.handle(captured, { address: "127.0.0.1", port: 40000 });
  await settle();
  assert.equal(h.server.counters.decided, 1, "never decided again");
  assert.equal(h.stores.get("alice")!.current, afterFirst);
});
