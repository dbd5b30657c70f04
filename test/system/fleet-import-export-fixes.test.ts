// db import / db export, fix round (red team rt1 F4, F5, F8) through the built CLI on a real
// throwaway PostgreSQL cluster.
import assert from "node:assert/strict";
import { chownSync, lchownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { systemClock } from "../../src/platform/clock.js";
import type { FleetStore } from "../../src/ports/fleet.js";
import { decideLogin, type LoginDecision } from "../../src/services/login.js";
import { fleetStore, keyFile } from "../helpers/fleet.js";
import { startCluster } from "../helpers/postgres.js";
import { runCli, systemReady, throwawayUser, uniqueName } from "../helpers/system.js";

const FACTORS = { password: false, requirePublickey: false, nullok: false, noSkewAdjust: false, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false } as const;
const A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

function login(store: FleetStore, user: string, code: string): Promise<LoginDecision> {
  return decideLogin(
    { openAccount: (u) => ({ store: store.account(u, code), location: "fleet" }), checkPassword: async () => false, clock: systemClock, macFactory: nodeMacFactory, sleep: async () => {} },
    { user, token: code, service: "test", factors: FACTORS },
  );
}

async function fleet(t: TestContext) {
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const store = await fleetStore(t, pg, keys);
  return { store, args: ["--store", pg.url, "--db-key-file", keys] };
}

function rootDir(t: TestContext): string {
  const dir = mkdtempSync("/root/otpgate-h7-");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("rt1 F4: import --replace of an older copy with the same secret brings no used emergency code back", async (t) => {
  if (!systemReady(t, [])) return;
  const f = await fleet(t);
  const u = throwawayUser(t);
  const old = `${A}\n" DISALLOW_REUSE\n" TOTP_AUTH\n11111111\n22222222\n33333333\n`;
  assert.equal(await f.store.put(u.name, old, "create"), "written");
  assert.equal((await login(f.store, u.name, "11111111")).outcome, "accepted");
  assert.equal((await login(f.store, u.name, "11111111")).outcome, "rejected", "used once");
  const path = join(u.home, "old.ga");
  writeFileSync(path, old, { mode: 0o400 });
  chownSync(path, u.uid, u.gid);
  const r = runCli(["db", "import", ...f.args, "--file", path, "--user", u.name, "--replace"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${u.name}: skipped: already in the database with this secret; --replace is only for another secret`, "m"));
  assert.equal((await f.store.list(u.name))[0]!.scratchCodes, 2, "the database still has 2 codes, not the file's 3");
  assert.equal((await login(f.store, u.name, "11111111")).outcome, "rejected", "the used emergency code stays used");
});

test("rt1 F5: db export as root never writes through a directory another user can change (symlinked or not)", async (t) => {
  if (!systemReady(t, [])) return;
  const f = await fleet(t);
  const mal = throwawayUser(t);
  const ghost = uniqueName("ghost").slice(0, 14); // no account here: root writes the file
  assert.equal(await f.store.put(ghost, `${A}\n" TOTP_AUTH\n`, "create"), "written");
  const victim = rootDir(t);
  const important = join(victim, "important");
  writeFileSync(important, "root's file\n", { mode: 0o400 });
  const link = join(mal.home, "out");
  symlinkSync(victim, link);
  lchownSync(link, mal.uid, mal.gid); // the link is the user's (not its target)

  for (const [output, force] of [
    [join(link, "important"), true],
    [join(link, "new"), false],
    [join(mal.home, "plain.ga"), false],
  ] as const) {
    const r = runCli(["db", "export", ghost, ...f.args, "--output", output, ...(force ? ["--force"] : [])]);
    assert.equal(r.status, 2, `${output}: ${r.stderr}`);
    assert.match(r.stderr, /is written as root \(no such account on this host\), so its directory must be root's and writable by nobody else/);
  }
  assert.equal(readFileSync(important, "latin1"), "root's file\n", "root's file unchanged");
  assert.throws(() => statSync(join(victim, "new")), /ENOENT/);
  assert.throws(() => statSync(join(mal.home, "plain.ga")), /ENOENT/);
  assert.equal((await f.store.list(ghost)).length, 1, "the account stays");

  // A root-only directory is fine.
  const ok = runCli(["db", "export", ghost, ...f.args, "--output", join(victim, "ghost.ga")]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(statSync(join(victim, "ghost.ga")).uid, 0);
});

test("rt1 F8: db export for a local account into a directory it cannot write says so, not 'already exists'", async (t) => {
  if (!systemReady(t, [])) return;
  const f = await fleet(t);
  const u = throwawayUser(t);
  assert.equal(await f.store.put(u.name, `${A}\n" TOTP_AUTH\n`, "create"), "written");
  const dir = rootDir(t);
  mkdirSync(join(dir, "sub"), { mode: 0o700 });
  const out = join(dir, "sub", "u.ga");
  const r = runCli(["db", "export", u.name, ...f.args, "--output", out, "--new-codes"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${u.name} cannot write there \\(the file is written as ${u.name}\\)`));
  assert.doesNotMatch(r.stderr, /already exists/);
  assert.throws(() => statSync(out), /ENOENT/);
  assert.equal((await f.store.list(u.name))[0]!.scratchCodes, 0, "no new codes in the database");
});
