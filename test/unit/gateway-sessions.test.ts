// Persisted session decisions (sessions_file) and the session service over them, with fixed clocks:
// revocations survive a restart, "valid after" ends a user's sessions, changes by another process
// are noticed, a new secret ends sessions, and refusals leave the file unchanged.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createSessionService, type SessionService } from "../../src/adapters/http/sessions.js";
import { openSessionsFile } from "../../src/adapters/http/gateway-entry.js";
import { gatewayCookies } from "../../src/adapters/http/cookie-names.js";
import { loadOrCreateKeyring, rotateKeys } from "../../src/platform/keyring.js";
import { systemRandom } from "../../src/platform/random.js";
import { GatewaySessionsFile, MAX_REVOKED, parseSessionsFile, pruneSessionsState, type SessionsState, type SessionsStore } from "../../src/stores/gateway-sessions.js";
import { Keyring } from "../../src/platform/keyring.js";

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const MIN = 60_000;
const session = { idleMs: 30 * MIN, absoluteMs: 12 * 60 * MIN, recheckMs: MIN };

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-gws-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Harness {
  make(watchMs?: number): SessionService;
  secrets: Map<string, string | null>;
  logs: Record<string, unknown>[];
  keysFile: string;
  sessionsFile: string;
  clock: { now: number; nowMs(): number };
}

function harness(t: { after(fn: () => void): void }): Harness {
  const dir = tempDir(t);
  const secrets = new Map<string, string | null>([
    ["alice", "SECRETA"],
    ["bob", "SECRETB"],
  ]);
  const logs: Record<string, unknown>[] = [];
  const clock = { now: T0, nowMs: () => clock.now };
  const keysFile = join(dir, "gateway.keys");
  const sessionsFile = join(dir, "gateway.sessions");
  const services: SessionService[] = [];
  t.after(() => services.forEach((s) => s.close()));
  return {
    secrets,
    logs,
    keysFile,
    sessionsFile,
    clock,
    make: (watchMs = 20) => {
      const s = createSessionService({
        config: { keysFile, sessionsFile, session },
        clock,
        random: systemRandom,
        openSessionsFile,
        log: (e) => logs.push(e),
        readSecret: async (user) => {
          const v = secrets.get(user);
          if (v === undefined) throw new Error("lookup timed out");
          return v;
        },
        watchMs,
      });
      services.push(s);
      return s;
    },
  };
}

const login = (s: SessionService, user: string, secret: string, now: number) => s.issue(user, now, s.fingerprint(user, secret)).cookie;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("issue and open: a new id per login, idle and absolute timeouts, tampered cookies refused", (t) => {
  const h = harness(t);
  const s = h.make();
  const a = login(s, "alice", "SECRETA", T0);
  const b = login(s, "alice", "SECRETA", T0);
  assert.notEqual(s.open(a, T0)?.sid, s.open(b, T0)?.sid);
  assert.equal(s.open(a, T0 + 29 * MIN)?.user, "alice");
  assert.equal(s.open(a, T0 + 29 * MIN + 30 * MIN - 1)?.user, "alice", "activity moves the idle timeout");
  assert.equal(s.open(b, T0 + 31 * MIN), null, "idle");
  assert.equal(s.open(a, T0 + 12 * 60 * MIN), null, "absolute");
  assert.equal(s.open(a.slice(0, -2) + (a.endsWith("AA") ? "BB" : "AA"), T0), null, "tampered");
  assert.equal(s.open(undefined, T0), null);
  assert.equal(s.open(s.keys().seal("csrf", JSON.parse(JSON.stringify(s.open(login(s, "bob", "SECRETB", T0), T0)))), T0), null, "a session sealed for another purpose");
  assert.equal(s.open(s.keys().seal("session", { sid: "short", user: "bob", createdAt: T0, lastSeenAt: T0 }), T0), null, "wrong shape");
});

test("logout persists: after a restart (a new service on the same files) the cookie is refused", async (t) => {
  const h = harness(t);
  const s1 = h.make();
  const cookie = login(s1, "alice", "SECRETA", T0);
  const opened = s1.open(cookie, T0)!;
  const sid = opened.sid;
  const ended: unknown[] = [];
  s1.onEnded((f) => ended.push(f));
  s1.revoke(opened, T0);
  assert.equal(s1.open(cookie, T0 + 1), null, "at once");
  assert.deepEqual(ended, [{ sid }]);
  await s1.flush();
  s1.close();
  assert.equal(statSync(h.sessionsFile).mode & 0o777, 0o600);
  const s2 = h.make();
  assert.equal(s2.open(cookie, T0 + 2), null, "still refused after the restart");
  const other = login(s2, "alice", "SECRETA", T0 + 3);
  assert.equal(s2.open(other, T0 + 4)?.user, "alice", "other sessions are unaffected");
});

test("log out everywhere from another process (the CLI) ends a running gateway's sessions within the watch interval, and tells listeners", async (t) => {
  const h = harness(t);
  const s = h.make();
  const alice = login(s, "alice", "SECRETA", T0);
  const bob = login(s, "bob", "SECRETB", T0);
  const ended: unknown[] = [];
  s.onEnded((f) => ended.push(f));
  await s.flush();
  const cli = new GatewaySessionsFile(h.sessionsFile, loadOrCreateKeyring(h.keysFile, T0, systemRandom).file.lockSecret);
  await cli.revokeUser("alice", T0 + 10);
  await sleep(80);
  assert.equal(s.open(alice, T0 + 20), null);
  assert.equal(s.open(bob, T0 + 20)?.user, "bob");
  assert.deepEqual(ended, [{ user: "alice" }]);
  const later = login(s, "alice", "SECRETA", T0 + 30);
  assert.equal(s.open(later, T0 + 40)?.user, "alice", "a login after the revocation works");
  // A restart keeps it.
  s.close();
  assert.equal(h.make().open(alice, T0 + 50), null);
});

test("another process's revocation is reported to listeners even when the gateway's own write reads it first", async (t) => {
  const h = harness(t);
  const s = h.make(60_000); // the timer does not fire during the test: only our own write sees the file
  const alice = login(s, "alice", "SECRETA", T0);
  login(s, "bob", "SECRETB", T0);
  const ended: unknown[] = [];
  s.onEnded((f) => ended.push(f));
  const cli = new GatewaySessionsFile(h.sessionsFile, loadOrCreateKeyring(h.keysFile, T0, systemRandom).file.lockSecret);
  await cli.revokeUser("bob", T0 + 10);
  s.revoke(s.open(alice, T0 + 20)!, T0 + 20);
  await s.flush();
  assert.equal(ended.length, 2, JSON.stringify(ended));
  assert.deepEqual(ended[1], { user: "bob" }, "bob's tunnels must close too");
});

test("after its own write the gateway adopts the file as it is then, not as it wrote it (another process may have written since)", async () => {
  let onDisk: SessionsState = { revoked: new Map(), validAfter: new Map() };
  const store: SessionsStore = {
    read: () => ({ state: onDisk, version: null }),
    revokeUser: async () => onDisk,
    revokeSession: async (sid, until) => {
      const written = { revoked: new Map([[sid, until]]), validAfter: new Map<string, number>() };
      // The CLI logs bob out right after our write, before our write's completion is handled.
      onDisk = { revoked: written.revoked, validAfter: new Map([["bob", T0 + 5]]) };
      return written;
    },
  };
  const keyring = new Keyring({ lockSecret: Buffer.alloc(32), keys: [{ kid: 1, createdAt: T0, material: Buffer.alloc(32, 1) }], legacy: false }, systemRandom);
  const s = createSessionService({
    config: { keysFile: "/nonexistent/k", sessionsFile: "/nonexistent/s", session },
    clock: { nowMs: () => T0 },
    random: systemRandom,
    log: () => undefined,
    readSecret: async () => "S",
    inMemory: { keyring, store },
  });
  const alice = login(s, "alice", "S", T0);
  const bob = login(s, "bob", "S", T0);
  const ended: unknown[] = [];
  s.onEnded((f) => ended.push(f));
  s.revoke(s.open(alice, T0 + 1)!, T0 + 1);
  await s.flush();
  assert.equal(s.open(bob, T0 + 10), null, "bob's log-out-everywhere is not lost");
  assert.deepEqual(ended.at(-1), { user: "bob" });
  s.close();
});

test("a new secret ends the user's sessions at the next check; a gone state file too; a lookup that cannot answer does not", async (t) => {
  const h = harness(t);
  const s = h.make();
  const ended: unknown[] = [];
  s.onEnded((f) => ended.push(f));
  const alice = login(s, "alice", "SECRETA", T0);
  const bob = login(s, "bob", "SECRETB", T0);
  h.secrets.set("alice", "NEWSECRET");
  assert.equal(s.open(alice, T0 + 1000)?.user, "alice", "not checked again before recheck");
  await s.flush();
  assert.equal(s.open(alice, T0 + 2000)?.user, "alice");
  assert.ok(s.open(alice, T0 + MIN + 1), "the request that starts the check");
  await s.flush();
  assert.equal(s.open(alice, T0 + MIN + 2), null, "ended once the check saw the new secret");
  assert.equal(ended.length, 1);
  assert.ok(h.logs.some((l) => l.event === "session-ended" && l.reason === "secret-changed" && l.user === "alice"));
  assert.ok(!JSON.stringify(h.logs).includes("SECRET"), "no secret in the log");

  h.secrets.delete("bob"); // lookup times out
  assert.ok(s.open(bob, T0 + MIN + 1));
  await s.flush();
  assert.equal(s.open(bob, T0 + MIN + 2)?.user, "bob", "kept: the check could not tell");
  h.secrets.set("bob", null); // state file gone
  await s.flush();
  assert.equal(s.open(bob, T0 + MIN + 3)?.user, "bob", "the request that starts the check again");
  await s.flush();
  assert.equal(s.open(bob, T0 + MIN + 4), null, "ended: no state file");

  assert.equal(await s.currentFingerprint("alice"), s.fingerprint("alice", "NEWSECRET"));
  assert.notEqual(s.fingerprint("alice", "NEWSECRET"), s.fingerprint("alice", "SECRETA"));
  assert.notEqual(s.fingerprint("alice", "X"), s.fingerprint("bob", "X"), "bound to the user too");
  assert.equal(await s.currentFingerprint("bob"), null);
  const fresh = login(s, "alice", "NEWSECRET", T0 + 2 * MIN);
  assert.ok(s.open(fresh, T0 + 4 * MIN));
  await s.flush();
  assert.equal(s.open(fresh, T0 + 4 * MIN + 1)?.user, "alice", "a session with the new secret stays");
  s.close();
  assert.equal(h.make().open(alice, T0 + 5 * MIN), null, "the ended session stays ended after a restart");
});

test("key rotation by another process: old cookies open, new ones use the new kid; a retired key's cookies end", async (t) => {
  const h = harness(t);
  const s = h.make();
  const before = login(s, "alice", "SECRETA", T0);
  assert.match(before, /^v1\.1\./);
  await s.flush();
  await rotateKeys(h.keysFile, T0 + 1000, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: session.absoluteMs });
  await sleep(80);
  const after = login(s, "alice", "SECRETA", T0 + 2000);
  assert.match(after, /^v1\.2\./);
  assert.equal(s.open(before, T0 + 3000)?.user, "alice");
  await s.flush();
  assert.equal(s.open(before, T0 + MIN + 3000)?.user, "alice", "the fingerprint check uses the key the fingerprint was made with");
  await s.flush();
  assert.equal(s.open(before, T0 + MIN + 3001)?.user, "alice");
  const token = s.csrf.token("csrf-id-12345678901234");
  await rotateKeys(h.keysFile, T0 + 5000, systemRandom, { rotate: false, retireOld: true, force: true, absoluteMs: session.absoluteMs });
  await sleep(80);
  assert.equal(s.open(before, T0 + MIN + 6000), null, "sealed with the retired key 1");
  assert.equal(s.open(after, T0 + MIN + 6000)?.user, "alice");
  assert.equal(s.csrf.valid("csrf-id-12345678901234", token), true, "CSRF token of key 2 still valid");
  assert.equal(s.csrf.valid("csrf-id-other", token), false);
});

test("a corrupt sessions file refuses to start; a file corrupted while running is ignored (decisions kept) and logged", async (t) => {
  const h = harness(t);
  const s = h.make();
  const alice = login(s, "alice", "SECRETA", T0);
  s.revokeUser("alice", T0 + 1);
  await s.flush();
  const good = readFileSync(h.sessionsFile, "utf8");
  writeFileSync(h.sessionsFile, "{not json");
  await sleep(80);
  assert.equal(s.open(alice, T0 + 2), null, "the revocation is kept");
  assert.ok(h.logs.some((l) => l.where === "sessions-file" && String(l.message).includes("not a sessions file otpgate wrote (not JSON)")));
  s.close();
  assert.throws(() => h.make(), /gateway\.sessions is not a sessions file otpgate wrote \(not JSON\); fix or delete it/);
  writeFileSync(h.sessionsFile, good);
  chmodSync(h.sessionsFile, 0o644);
  assert.throws(() => h.make(), /has mode 0644; it must be readable by its owner only/);
  assert.equal(readFileSync(h.sessionsFile, "utf8"), good, "unchanged");
  // The CLI's update refuses too and changes nothing.
  const cli = new GatewaySessionsFile(h.sessionsFile, loadOrCreateKeyring(h.keysFile, T0, systemRandom).file.lockSecret);
  await assert.rejects(cli.revokeUser("bob", T0), /chmod 600/);
  assert.equal(readFileSync(h.sessionsFile, "utf8"), good);
});

test("the sessions file: pruned of expired revocations, bounded, validated", () => {
  const state = {
    revoked: new Map([
      ["a".repeat(24), T0 - 1],
      ["b".repeat(24), T0 + 1],
    ]),
    validAfter: new Map([["alice", T0]]),
  };
  assert.deepEqual([...pruneSessionsState(state, T0).revoked.keys()], ["b".repeat(24)]);
  const many = new Map<string, number>();
  for (let i = 0; i < MAX_REVOKED + 10; i++) many.set(`sid${String(i).padStart(20, "0")}`, T0 + i);
  const pruned = pruneSessionsState({ revoked: many, validAfter: new Map() }, T0);
  assert.equal(pruned.revoked.size, MAX_REVOKED);
  assert.ok(!pruned.revoked.has(`sid${"0".repeat(20)}`), "the soonest to expire went first");
  for (const bad of [
    '{"v":2}',
    '{"v":1,"revoked":[],"validAfter":{}}',
    '{"v":1,"revoked":{"x":1},"validAfter":{}}',
    '{"v":1,"revoked":{},"validAfter":{"../x":1}}',
    '{"v":1,"revoked":{},"validAfter":{"alice":"1"}}',
  ]) {
    assert.throws(() => parseSessionsFile(bad, "F"), /F is not a sessions file otpgate wrote/, bad);
  }
});

test("cookie names: __Host- behind https (session and CSRF), plain otherwise; every name read is in the strip list", () => {
  const https = gatewayCookies({ cookieName: "otpgate_session", publicUrl: new URL("https://app.example.com"), pagesPrefix: "/_otpgate" });
  assert.equal(https.csrfAttributes, "Path=/; HttpOnly; Secure", "__Host- needs Path=/");
  assert.equal(https.session, "__Host-otpgate_session");
  assert.equal(https.csrf, "__Host-otpgate_csrf");
  assert.match(https.attributes, /Path=\/; HttpOnly; Secure/);
  assert.doesNotMatch(https.attributes, /Domain/i);
  for (const n of ["__Host-otpgate_session", "__Host-otpgate_csrf", "otpgate_session", "otpgate_csrf"]) assert.ok(https.all.includes(n), n);
  const http = gatewayCookies({ cookieName: "sess", publicUrl: new URL("http://127.0.0.1:9091"), pagesPrefix: "/_otpgate" });
  assert.equal(http.csrfAttributes, "Path=/_otpgate; HttpOnly");
  assert.equal(http.session, "sess");
  assert.doesNotMatch(http.attributes, /Secure/);
  assert.ok(http.all.includes("otpgate_csrf"));
});

// Red team 1, F5 (keys): a tunnel of a session sealed with a retired key stayed open. After keys_file
// changes, listeners are told (the app re-checks every tunnel), and a retired key's cookie no longer
// passes the tunnel re-check (stillValid), while the new key's does.
test("a key retired by another process: onKeysChanged listeners are told, and the tunnel re-check refuses its sessions (F5)", async (t) => {
  const h = harness(t);
  const s = h.make();
  let told = 0;
  s.onKeysChanged(() => told++);
  const before = login(s, "alice", "SECRETA", T0);
  await s.flush();
  await rotateKeys(h.keysFile, T0 + 1000, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: session.absoluteMs });
  await sleep(80);
  assert.equal(told, 1, "told of the rotation");
  const after = login(s, "alice", "SECRETA", T0 + 2000);
  assert.equal(s.stillValid(before, T0 + 3000, false), true);
  await rotateKeys(h.keysFile, T0 + 5000, systemRandom, { rotate: false, retireOld: true, force: true, absoluteMs: session.absoluteMs });
  await sleep(80);
  assert.equal(told, 2, "told of the retirement");
  assert.equal(s.stillValid(before, T0 + 6000, false), false, "sealed with the retired key 1");
  assert.equal(s.stillValid(after, T0 + 6000, true), true);
  s.close();
});

// RT-B F7: issue() remembered every session until `absolute`, and once 100,000 were remembered every
// check scanned both maps and freed nothing (0.006 ms -> 4.65 ms a check). An entry older than
// `recheck` (or `idle`) means what no entry means, so it is dropped, oldest first, at most once a second.
test("100,000 sessions issued within `absolute`: the service remembers only the recent ones, and a check stays cheap", async (t) => {
  const h = harness(t);
  const s = h.make(60_000);
  const step = Math.floor((11 * 60 * MIN) / 100_000); // 100,000 logins over 11 hours
  let last = "";
  for (let i = 0; i < 100_000; i++) last = login(s, `u${i % 50}`, "SECRETA", T0 + i * step);
  const now = T0 + 100_000 * step;
  h.secrets.set("u49", "SECRETA");
  assert.equal(s.open(last, now)?.user, `u${99_999 % 50}`, "the newest session still opens");
  assert.ok(s.tracked.checked <= Math.ceil(MIN / step) + 2, `only sessions checked within recheck are remembered (${s.tracked.checked})`);
  assert.ok(s.tracked.seen <= 1, `only sessions seen within idle are remembered (${s.tracked.seen})`);
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) s.open(last, now + i);
  const perCheck = (performance.now() - t0) / 1000;
  assert.ok(perCheck < 1, `a check takes ${perCheck.toFixed(3)} ms (it took 4.65 ms before)`);
  await s.flush();
});
