// Red team 2, the gateway's files (F3, F7, F9): a sessions file that vanishes, is emptied or is
// replaced while the gateway runs never brings a logged-out session back; a missing one at start
// is noticed; every user name the system accepts can be stored and revoked; paths are compared
// (and locks named) after resolving them.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createSessionService, type SessionService } from "../../src/adapters/http/sessions.js";
import { openSessionsFile } from "../../src/adapters/http/gateway-entry.js";
import { loadOrCreateKeyring, privateLockName, readKeyFile, rotateKeys } from "../../src/platform/keyring.js";
import { systemRandom } from "../../src/platform/random.js";
import { GatewaySessionsFile, parseSessionsFile } from "../../src/stores/gateway-sessions.js";

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const MIN = 60_000;
const session = { idleMs: 30 * MIN, absoluteMs: 12 * 60 * MIN, recheckMs: MIN };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rig(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "fixf-gwf-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keysFile = join(dir, "gateway.keys");
  const sessionsFile = join(dir, "gateway.sessions");
  const logs: Record<string, unknown>[] = [];
  const services: SessionService[] = [];
  t.after(() => services.forEach((s) => s.close()));
  const make = () => {
    const s = createSessionService({
      config: { keysFile, sessionsFile, session },
      clock: { nowMs: () => T0 },
      random: systemRandom,
      log: (e) => logs.push(e),
      readSecret: async () => "SECRET",
      openSessionsFile,
      watchMs: 20,
    });
    services.push(s);
    return s;
  };
  return { dir, keysFile, sessionsFile, logs, make };
}

const signIn = (s: SessionService, user: string) => {
  const issued = s.issue(user, T0, s.fingerprint(user, "SECRET"));
  return { cookie: issued.cookie, session: issued.session };
};

test("F3: a sessions file deleted, emptied or replaced while the gateway runs brings no logged-out session back; an error is logged", async (t) => {
  const r = rig(t);
  const s = r.make();
  const alice = signIn(s, "alice");
  const bob = signIn(s, "bob");
  s.revoke(alice.session, T0 + 1); // logout
  s.revokeUser("bob", T0 + 1); // log out everywhere
  await s.flush();
  assert.equal(s.open(alice.cookie, T0 + 2), null);
  await sleep(100); // the watch has seen the file

  unlinkSync(r.sessionsFile); // another user who controls the directory deletes it
  await sleep(100);
  assert.equal(s.open(alice.cookie, T0 + 2), null, "a logged-out cookie stays refused after the sessions file is deleted");
  assert.equal(s.open(bob.cookie, T0 + 2), null, "a user logged out everywhere stays logged out");
  assert.ok(
    r.logs.some((l) => l.where === "sessions-file" && /gateway\.sessions is missing/.test(String(l.message))),
    JSON.stringify(r.logs),
  );

  // The CLI (another process) does not recreate it from nothing: the keys file says it existed.
  const cli = new GatewaySessionsFile(r.sessionsFile, readKeyFile(r.keysFile)!.lockSecret, r.keysFile);
  await assert.rejects(cli.revokeUser("carol", T0), /gateway\.sessions is missing.*restore it from a backup/);
  assert.equal(existsSync(r.sessionsFile), false, "nothing was written");

  writeFileSync(r.sessionsFile, "", { mode: 0o600 }); // emptied
  await sleep(100);
  assert.equal(s.open(alice.cookie, T0 + 2), null, "emptied: still refused");
  writeFileSync(r.sessionsFile, JSON.stringify({ v: 1, revoked: {}, validAfter: {} }), { mode: 0o600 }); // replaced by an older/empty state
  await sleep(100);
  assert.equal(s.open(alice.cookie, T0 + 2), null, "replaced by a file without the logout: still refused");
  assert.equal(s.open(bob.cookie, T0 + 2), null);

  // The gateway's next write puts back everything it knows.
  const carol = signIn(s, "carol");
  s.revoke(carol.session, T0 + 3);
  await s.flush();
  const stored = parseSessionsFile(readFileSync(r.sessionsFile, "utf8"), "F");
  assert.ok(stored.revoked.has(alice.session.sid) && stored.revoked.has(carol.session.sid) && stored.validAfter.has("bob"), "restored by the next write");
});

test("F3: a sessions file missing at start is refused when the keys file records that it was created; nothing is created", async (t) => {
  const r = rig(t);
  const first = r.make();
  await first.flush();
  first.close();
  assert.ok(existsSync(r.sessionsFile), "created at the first start, next to the keys");
  assert.equal(readKeyFile(r.keysFile)!.sessionsFileCreated, true);
  unlinkSync(r.sessionsFile);
  assert.throws(() => r.make(), /gateway\.sessions is missing, but .*gateway\.keys records that it was created.*restore it from a backup/);
  assert.equal(existsSync(r.sessionsFile), false);
});

test("F3: a rotation keeps the keys file's record of the sessions file", async (t) => {
  const r = rig(t);
  const first = r.make();
  await first.flush();
  first.close();
  await rotateKeys(r.keysFile, T0 + 1, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: session.absoluteMs });
  assert.equal(readKeyFile(r.keysFile)!.sessionsFileCreated, true);
  assert.equal(readKeyFile(r.keysFile)!.keys.length, 2);
});

test("F3: a keys file of an earlier version (no record) is given one at start; the sessions file is created", async (t) => {
  const r = rig(t);
  const keys = loadOrCreateKeyring(r.keysFile, T0, systemRandom);
  // as the previous version wrote it: no record line, no sessions file
  writeFileSync(r.keysFile, readFileSync(r.keysFile, "latin1").replace(/^sessions .*\n/m, ""), { mode: 0o600 });
  rmSync(r.sessionsFile, { force: true });
  assert.equal(readKeyFile(r.keysFile)!.sessionsFileCreated, false);
  const s = r.make();
  await s.flush();
  s.close();
  assert.equal(readKeyFile(r.keysFile)!.sessionsFileCreated, true);
  assert.deepEqual(
    readKeyFile(r.keysFile)!.keys.map((k) => k.kid),
    keys.kids,
    "same keys",
  );
  assert.ok(existsSync(r.sessionsFile));
});

test("F7: user names the system accepts (leading digit, alice@corp, trailing $) can be stored and revoked; path-like names cannot", async (t) => {
  const r = rig(t);
  const s = r.make();
  const names = ["9abc", "alice@corp", "host$", "Jörg"];
  const cookies = names.map((n) => signIn(s, n).cookie);
  for (const n of names) s.revokeUser(n, T0 + 1);
  await s.flush();
  assert.deepEqual(
    r.logs.filter((l) => l.event === "error"),
    [],
    "no write or re-read failed",
  );
  const stored = parseSessionsFile(readFileSync(r.sessionsFile, "utf8"), "F");
  assert.deepEqual([...stored.validAfter.keys()].sort(), [...names].sort());
  s.close();
  const again = r.make(); // a restart reads them back
  for (const c of cookies) assert.equal(again.open(c, T0 + 2), null);
  const cli = new GatewaySessionsFile(r.sessionsFile, readKeyFile(r.keysFile)!.lockSecret, r.keysFile);
  await cli.revokeUser("0day", T0 + 3);
  assert.ok(cli.read().state.validAfter.has("0day"));
  for (const bad of ["../x", "a/b", "", "x\u0001y", "x".repeat(300)]) {
    assert.throws(() => parseSessionsFile(JSON.stringify({ v: 1, revoked: {}, validAfter: { [bad]: 1 } }), "F"), /F is not a sessions file otpgate wrote/, bad);
  }
});

test("F9: lock names come from the resolved path: other spellings and symbolic links to the directory share the lock", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "fixf-lock-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "real"));
  symlinkSync(join(dir, "real"), join(dir, "alias"));
  const secret = Buffer.alloc(32, 7);
  const name = privateLockName(secret, join(dir, "real", "gateway.sessions"));
  assert.equal(privateLockName(secret, `${dir}/real//gateway.sessions`), name);
  assert.equal(privateLockName(secret, `${dir}/real/./x/../gateway.sessions`), name);
  assert.equal(privateLockName(secret, join(dir, "alias", "gateway.sessions")), name, "through a symbolic link to the directory");
  assert.notEqual(privateLockName(secret, join(dir, "real", "gateway.keys")), name);
});
