// otpgate enroll / status / codes / qr with --store (issue 11) through the built CLI: the core
// bundle hands over to dist/otpgate-fleet.cjs, which runs the same command on the fleet database.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { systemClock } from "../../src/platform/clock.js";
import type { FleetStore } from "../../src/ports/fleet.js";
import { decideLogin, type LoginDecision } from "../../src/services/login.js";
import { fleetStore, keyFile } from "../helpers/fleet.js";
import { startCluster } from "../helpers/postgres.js";
import { oathTotp, runCli, systemReady, tempDir, throwawayUser, uniqueName, zbarimg } from "../helpers/system.js";

const FACTORS = { password: false, requirePublickey: false, nullok: false, noSkewAdjust: false, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false } as const;

function login(store: FleetStore, user: string, code: string): Promise<LoginDecision> {
  return decideLogin(
    { openAccount: (u) => ({ store: store.account(u, code), location: "fleet" }), checkPassword: async () => false, clock: systemClock, macFactory: nodeMacFactory, sleep: async () => {} },
    { user, token: code, service: "test", factors: FACTORS },
  );
}

const codesIn = (text: string) => [...text.matchAll(/^ {2}([0-9]{8})$/gm)].map((m) => m[1]!);

test("enroll --store, status --all (no secret), codes --regenerate (old refused, new work), qr decodes to the account's URI", async (t) => {
  if (!systemReady(t, ["oathtool", "zbarimg"])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const store = await fleetStore(t, pg, keys);
  const args = ["--store", pg.url, "--db-key-file", keys];
  const u = throwawayUser(t);

  const e = runCli(["enroll", "--user", u.name, "-t", "-d", "-W", "-r", "5", "-R", "30", "-Q", "NONE", "-e", "3", ...args]);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stderr, new RegExp(`saved the fleet database for ${u.name}`));
  assert.equal(existsSync(join(u.home, ".google_authenticator")), false, "no state file written");
  const secret = /Your new secret key is: ([A-Z2-7 ]+)/.exec(e.stdout)![1]!.replace(/ /g, "");
  const oldCodes = codesIn(e.stdout);
  assert.equal(oldCodes.length, 3);
  assert.equal((await store.document(u.name))!.text.split("\n")[0], secret, "the secret shown is the one stored");
  assert.equal((await login(store, u.name, oathTotp(secret))).outcome, "accepted");

  const twice = runCli(["enroll", "--user", u.name, "-t", "-d", "-W", "-u", "-q", ...args]);
  assert.equal(twice.status, 2);
  assert.match(twice.stderr, /is already enrolled in the fleet database; pass -f\/--force/);

  for (const extra of [[], ["--json"]]) {
    const s = runCli(["status", "--all", ...args, ...extra]);
    assert.equal(s.status, 0, s.stderr);
    assert.ok(s.stdout.includes(u.name), "the user is listed");
    assert.ok(!s.stdout.includes(secret) && !s.stdout.toLowerCase().includes(secret.toLowerCase()), "no secret in status --all");
    for (const c of oldCodes) assert.ok(!s.stdout.includes(c), "no emergency code in status");
  }
  const json = JSON.parse(runCli(["status", "--all", "--json", ...args]).stdout) as { user: string; emergencyCodesLeft: number; mode: string; store: string }[];
  const row = json.find((r) => r.user === u.name)!;
  assert.deepEqual([row.mode, row.emergencyCodesLeft, row.store], ["totp", 3, "postgres"]);
  const one = runCli(["status", "--user", u.name, ...args]);
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout, /enrolled, time-based/);
  assert.match(one.stdout, /emergency codes: 3 left/);

  const count = runCli(["codes", "--user", u.name, ...args]);
  assert.equal(count.status, 0, count.stderr);
  assert.match(count.stdout, /has 3 emergency codes left in the fleet database/);
  const regen = runCli(["codes", "--user", u.name, "--regenerate", "-e", "4", ...args]);
  assert.equal(regen.status, 0, regen.stderr);
  const newCodes = codesIn(regen.stdout);
  assert.equal(newCodes.length, 4);
  assert.equal((await login(store, u.name, oldCodes[0]!)).outcome, "rejected", "an old code no longer works");
  assert.equal((await login(store, u.name, newCodes[0]!)).outcome, "accepted", "a new one does");

  const png = join(tempDir(t, "otpgate-fleet-qr-"), "qr.png");
  const qr = runCli(["qr", "--user", u.name, "-Q", "NONE", "--qr-png", png, "--issuer", "Fleet", ...args]);
  assert.equal(qr.status, 0, qr.stderr);
  assert.match(qr.stderr, /warning: showing .*'s secret/);
  const uri = zbarimg(png);
  assert.equal(uri, /otpauth URI: (\S+)/.exec(qr.stdout)![1]);
  assert.match(uri, new RegExp(`^otpauth://totp/${u.name}@[^?]+\\?secret=${secret}&issuer=Fleet$`));
});

test("--store error paths: not root, unknown user, no key file, unreachable database, not enrolled; nothing written", async (t) => {
  if (!systemReady(t, [])) return;
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const store = await fleetStore(t, pg, keys);
  const args = ["--store", pg.url, "--db-key-file", keys];
  const u = throwawayUser(t);

  const notRoot = runCli(["status", "--user", u.name, ...args], { uid: u.uid, gid: u.gid });
  assert.equal(notRoot.status, 2);
  assert.match(notRoot.stderr, /^otpgate status: otpgate status --store needs the database password and the key file, which only root can read: run it as root/m);

  const ghost = uniqueName("ghost");
  const unknown = runCli(["enroll", "--user", ghost, "-t", "-d", "-W", "-u", "-q", ...args]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, new RegExp(`no such user "${ghost}"; check the name with getent passwd`));

  const noKey = runCli(["enroll", "--user", u.name, "-t", "-d", "-W", "-u", "-q", "--store", pg.url, "--db-key-file", "/nonexistent/db.key"]);
  assert.equal(noKey.status, 2);
  assert.match(noKey.stderr, /the key file \/nonexistent\/db\.key does not exist/);

  const down = runCli(["enroll", "--user", u.name, "-t", "-d", "-W", "-u", "-q", "--store", "postgres://postgres@127.0.0.1:1/otpgate", "--db-key-file", keys]);
  assert.notEqual(down.status, 0);
  assert.match(down.stderr, /^otpgate enroll: the fleet database cannot be used right now/m);

  for (const cmd of [["codes"], ["qr", "-Q", "NONE"]]) {
    const r = runCli([...cmd, "--user", u.name, ...args]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${u.name} is not enrolled in the fleet database: enroll it with otpgate enroll --user ${u.name} --store URL`));
  }
  const st = runCli(["status", "--user", u.name, ...args]);
  assert.equal(st.status, 1);
  assert.match(st.stdout, /not enrolled in the fleet database/);
  const password = runCli(["status", "--user", u.name, "--store", "postgres://postgres:hunter2@localhost/otpgate"]);
  assert.equal(password.status, 2);
  assert.match(password.stderr, /the URL must not carry the password/);
  assert.deepEqual(await store.list(), [], "nothing written by any of them");
  assert.equal(existsSync(join(u.home, ".google_authenticator")), false);
});
