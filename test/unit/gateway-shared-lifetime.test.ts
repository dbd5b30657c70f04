// RT-B F4 (issue 9, red team 2nd pass): a revocation must outlive every cookie it revokes, whatever
// the instances' session.absolute. On the old code a logout on A (absolute 20 s) was kept until
// createdAt + 20 s; B (absolute 12 h) accepted the logged-out cookie again after a restart. Now the
// cookie carries its own absolute expiry (sealed; every instance enforces it), a logout's row lives
// until that expiry, and a "log out everywhere" until the longest session the configuration allows.
// Fixed clocks, one in-memory database for the instances.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSharedState } from "../../src/adapters/http/shared-state.js";
import { createSessionService, type SessionService } from "../../src/adapters/http/sessions.js";
import { parseGatewayConfig, GatewayConfigError } from "../../src/adapters/http/gateway-config.js";
import { Keyring } from "../../src/platform/keyring.js";
import { LONGEST_SESSION_MS, type GatewayStateStore, type Revocation } from "../../src/ports/gateway-state.js";
import { MemorySessionsStore } from "../../src/stores/gateway-sessions.js";

const HOUR = 3_600_000;
const SECRET = "SECRET-alice";

function memoryDatabase(clock: { t: number }) {
  const rows: Revocation[] = [];
  const store = (): GatewayStateStore => ({
    where: "postgres://db/otpgate",
    async revoke(r) {
      rows.push(r);
    },
    async bans() {},
    // Like the real store: rows past their until are neither read nor kept.
    async changes(_cursor, now) {
      return { revocations: rows.filter((r) => r.until > now), bans: [], cursor: clock.t };
    },
    async prune(now) {
      for (let i = rows.length - 1; i >= 0; i--) if (rows[i]!.until <= now) rows.splice(i, 1);
    },
    async close() {},
  });
  return { rows, store };
}

function keyringFor(t: number) {
  let counter = 0;
  const random = { bytes: (n: number) => Uint8Array.from({ length: n }, () => ++counter % 256) };
  return { random, keyring: new Keyring({ lockSecret: Buffer.alloc(32, 3), keys: [{ kid: 1, createdAt: t, material: Buffer.alloc(32, 1) }], legacy: false }, random) };
}

/** One gateway instance (a "restart" is a new one) with its own session.absolute, on the shared database. */
async function instance(db: ReturnType<typeof memoryDatabase>, clock: { t: number }, absoluteMs: number, keys: ReturnType<typeof keyringFor>): Promise<SessionService> {
  const shared = createSharedState({ store: db.store(), clock: { nowMs: () => clock.t }, log: () => undefined, absoluteMs });
  assert.ok(await shared.sync());
  return createSessionService({
    config: { keysFile: "/nonexistent/gateway.keys", sessionsFile: "/nonexistent/gateway.sessions", session: { idleMs: Math.min(absoluteMs, 30 * 60_000), absoluteMs, recheckMs: HOUR } },
    clock: { nowMs: () => clock.t },
    random: keys.random,
    log: () => undefined,
    readSecret: async () => SECRET,
    inMemory: { keyring: keys.keyring, store: shared.store }, // the keys as from a shared keys_file
    shared,
  });
}

test("a logout on A (absolute 20 s) stays in force on B (absolute 12 h) after B restarts, past A's 20 s", async () => {
  const clock = { t: 1_800_000_000_000 };
  const db = memoryDatabase(clock);
  const keys = keyringFor(clock.t);
  const a = await instance(db, clock, 20_000, keys);
  const b = await instance(db, clock, 12 * HOUR, keys);
  const { cookie } = b.issue("alice", clock.t, b.fingerprint("alice", SECRET));
  clock.t += 1000;
  const onA = a.open(cookie, clock.t);
  assert.ok(onA, "B's cookie opens on A");
  a.revoke(onA, clock.t); // POST /_otpgate/logout on A
  await a.flush();
  assert.equal(db.rows.length, 1);
  assert.equal(db.rows[0]!.until, 1_800_000_000_000 + 12 * HOUR, "kept until the cookie's own expiry (sealed by B: 12 h), not A's 20 s");
  clock.t += 25_000; // past createdAt + A's absolute
  const restarted = await instance(db, clock, 12 * HOUR, keys);
  assert.equal(restarted.open(cookie, clock.t), null, "the logged-out cookie stays refused on B after its restart");
});

test('"log out everywhere" on A (absolute 20 s): a session B issued before it stays ended after B restarts', async () => {
  const clock = { t: 1_800_000_000_000 };
  const db = memoryDatabase(clock);
  const keys = keyringFor(clock.t);
  const a = await instance(db, clock, 20_000, keys);
  const b = await instance(db, clock, 12 * HOUR, keys);
  const { cookie } = b.issue("alice", clock.t, b.fingerprint("alice", SECRET));
  clock.t += 1000;
  a.revokeUser("alice", clock.t);
  await a.flush();
  assert.equal(db.rows[0]!.until, clock.t + LONGEST_SESSION_MS, "kept as long as any session made before it could live");
  clock.t += 25_000;
  const restarted = await instance(db, clock, 12 * HOUR, keys);
  assert.equal(restarted.open(cookie, clock.t), null, "the session made before the logout stays ended on B after its restart");
  const fresh = restarted.issue("alice", clock.t, restarted.fingerprint("alice", SECRET));
  assert.ok(restarted.open(fresh.cookie, clock.t + 1), "a session made after it works");
});

test("a cookie lives no longer than the session.absolute it was issued under, even where a longer one is configured (a restart with a longer absolute, or another instance)", async () => {
  const clock = { t: 1_800_000_000_000 };
  const keys = keyringFor(clock.t);
  const service = (absoluteMs: number) =>
    createSessionService({
      config: { keysFile: "/nonexistent/gateway.keys", sessionsFile: "/nonexistent/gateway.sessions", session: { idleMs: Math.min(absoluteMs, 30 * 60_000), absoluteMs, recheckMs: HOUR } },
      clock: { nowMs: () => clock.t },
      random: keys.random,
      log: () => undefined,
      readSecret: async () => SECRET,
      inMemory: { keyring: keys.keyring, store: new MemorySessionsStore() },
    });
  const short = service(20_000);
  const long = service(12 * HOUR);
  const { cookie } = short.issue("alice", clock.t, short.fingerprint("alice", SECRET));
  clock.t += 10_000;
  const s = long.open(cookie, clock.t);
  assert.ok(s, "within 20 s it opens everywhere");
  assert.equal(long.expiresAt(s), 1_800_000_000_000 + 20_000, "a tunnel's timer ends at the cookie's own expiry");
  clock.t += 10_000;
  assert.equal(long.open(cookie, clock.t), null, "20 s after it was issued it is expired on an instance with 12 h too");
});

test("LONGEST_SESSION_MS is session.absolute's upper bound in the configuration", () => {
  const cfg = (absolute: string) => parseGatewayConfig(`public_url: https://app.example.com\nsession:\n  absolute: ${absolute}\n  idle: 30m\n`);
  assert.equal(cfg(`${LONGEST_SESSION_MS / 86_400_000}d`).session.absoluteMs, LONGEST_SESSION_MS);
  assert.throws(() => cfg(`${LONGEST_SESSION_MS / 86_400_000 + 1}d`), GatewayConfigError);
});
