// Migration both ways between google-authenticator state files and the fleet database (issue 11),
// through the built CLI (otpgate db import / db export run in dist/otpgate-fleet.cjs) on a real
// throwaway PostgreSQL cluster. Logins after an import are decided by services/login.ts
// decideLogin on the fleet store's account(user, code): the same decision otpgate server makes.
import assert from "node:assert/strict";
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { systemClock } from "../../src/platform/clock.js";
import type { FleetStore } from "../../src/ports/fleet.js";
import { decideLogin, type LoginDecision } from "../../src/services/login.js";
import { fleetStore, keyFile } from "../helpers/fleet.js";
import { startCluster, type Cluster } from "../helpers/postgres.js";
import { oathTotp, pamService, pamtester, runCli, sh, systemReady, throwawayUser, uniqueName } from "../helpers/system.js";

const FACTORS = { password: false, requirePublickey: false, nullok: false, noSkewAdjust: false, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false } as const;

/** One login decided on the fleet store, as otpgate server decides it. */
function login(store: FleetStore, user: string, code: string): Promise<LoginDecision> {
  return decideLogin(
    { openAccount: (u) => ({ store: store.account(u, code), location: "fleet" }), checkPassword: async () => false, clock: systemClock, macFactory: nodeMacFactory, sleep: async () => {} },
    { user, token: code, service: "test", factors: FACTORS },
  );
}

interface Fleet {
  readonly pg: Cluster;
  readonly store: FleetStore;
  readonly args: string[];
}

async function fleet(t: TestContext): Promise<Fleet> {
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const store = await fleetStore(t, pg, keys); // migrated
  return { pg, store, args: ["--store", pg.url, "--db-key-file", keys] };
}

/** A root-only directory (not under /tmp: every component must be root's and writable by nobody else). */
function rootDir(t: TestContext): string {
  const dir = mkdtempSync("/root/otpgate-import-");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function put(dir: string, host: string, user: string, text: string): string {
  mkdirSync(join(dir, host), { recursive: true, mode: 0o700 });
  const path = join(dir, host, user);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

const A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const B = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

test("import: files of the real google-authenticator and of otpgate enroll; used codes stay used, emergency codes work once", async (t) => {
  if (!systemReady(t, ["pamtester", "oathtool", "pam_google_authenticator.so", "google-authenticator"])) return;
  const f = await fleet(t);
  const service = pamService(t, ["auth required pam_google_authenticator.so"]);

  // 1. google-authenticator's own file, and one code used through the reference module before the import.
  const ga = throwawayUser(t);
  sh("runuser", ["-u", ga.name, "--", "env", `HOME=${ga.home}`, "google-authenticator", "-t", "-d", "-f", "-r", "5", "-R", "30", "-w", "3", "-Q", "NONE", "-C", "-q", "-e", "3"]);
  const gaText = readFileSync(join(ga.home, ".google_authenticator"), "latin1");
  const gaSecret = gaText.split("\n")[0]!;
  const gaCodes = gaText.trim().split("\n").slice(-3);
  const used = oathTotp(gaSecret);
  assert.equal(pamtester(service, ga.name, used).ok, true, "the module accepts the code before the import");

  const dry = runCli(["db", "import", ...f.args, "--user", ga.name, "--dry-run"]);
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`^${ga.name}: would import from `, "m"));
  assert.match(dry.stdout, /dry run \(nothing written\): 1 imported, 0 merged, 0 skipped, 0 conflicts/);
  assert.deepEqual(await f.store.list(ga.name), [], "--dry-run writes nothing");

  const r = runCli(["db", "import", ...f.args, "--user", ga.name]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /summary: 1 imported, 0 merged, 0 skipped, 0 conflicts/);
  assert.ok(!r.stdout.includes(gaSecret) && !r.stderr.includes(gaSecret), "no secret in the output");
  assert.equal((await f.store.list(ga.name))[0]!.scratchCodes, 3);
  assert.match((await f.store.list(ga.name))[0]!.options, /" RATE_LIMIT 5 30 [0-9]+\n/, "the module's rate-limit stamp came along");

  const replay = await login(f.store, ga.name, used);
  assert.equal(replay.outcome, "rejected", "a code used before the import is refused after it (DISALLOW_REUSE kept)");
  assert.equal(replay.reason, "replay");
  const next = oathTotp(gaSecret, 1);
  assert.equal((await login(f.store, ga.name, next)).outcome, "accepted", "a fresh code from oathtool works");
  assert.equal((await login(f.store, ga.name, gaCodes[0]!)).outcome, "accepted", "an emergency code from the file works");
  assert.equal((await login(f.store, ga.name, gaCodes[0]!)).outcome, "rejected", "... once");
  assert.equal((await f.store.list(ga.name))[0]!.scratchCodes, 2);

  // 2. otpgate enroll's file.
  const og = throwawayUser(t);
  const e = runCli(["enroll", "--user", og.name, "-t", "-d", "-W", "-u", "-Q", "NONE", "-e", "2"]);
  assert.equal(e.status, 0, e.stderr);
  const ogText = readFileSync(join(og.home, ".google_authenticator"), "latin1");
  const ogSecret = ogText.split("\n")[0]!;
  const ogCodes = ogText.trim().split("\n").slice(-2);
  const r2 = runCli(["db", "import", ...f.args, "--user", og.name]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal((await login(f.store, og.name, oathTotp(ogSecret))).outcome, "accepted");
  assert.equal((await login(f.store, og.name, ogCodes[1]!)).outcome, "accepted");
  assert.equal((await login(f.store, og.name, ogCodes[1]!)).outcome, "rejected");

  // Again: the database has the same secret, so the user is skipped (exit 0), nothing changed.
  const before = await f.store.document(og.name);
  const again = runCli(["db", "import", ...f.args, "--user", og.name]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`${og.name}: skipped: already in the database with this secret`));
  assert.deepEqual(await f.store.document(og.name), before);
});

test("import --from DIR/HOST/USER: different secrets are a conflict (exit 1, nothing written), --prefer picks; the same secret merges safely", async (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const f = await fleet(t);
  const dir = rootDir(t);
  const alice = uniqueName("alice");
  const bob = uniqueName("bob");
  const step = Math.floor(Date.now() / 30_000);
  put(dir, "web1", alice, `${A}\n" TOTP_AUTH\n11111111\n`);
  put(dir, "web2", alice, `${B}\n" TOTP_AUTH\n11111111\n`);
  // bob: one secret on both hosts; web1 used the current step, web2 used emergency code 22222222.
  put(dir, "web1", bob, `${A}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE ${step}\n" TOTP_AUTH\n22222222\n33333333\n`);
  put(dir, "web2", bob, `${A}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE ${step - 1}\n" TOTP_AUTH\n33333333\n`);

  const r = runCli(["db", "import", ...f.args, "--from", dir]);
  assert.equal(r.status, 1, `a conflict exits 1: ${r.stderr}`);
  assert.match(r.stdout, new RegExp(`^${alice}: CONFLICT: different secrets on web1, web2; skipped \\(choose the one that wins with --prefer HOST\\)$`, "m"));
  assert.match(r.stdout, new RegExp(`^${bob}: merged from web1, web2; 1 emergency code\\(s\\) left out \\(already used on another host\\)$`, "m"));
  assert.match(r.stdout, /summary: 0 imported, 1 merged, 0 skipped, 1 conflicts/);
  for (const s of [A, B]) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), "no secret in the report");
  assert.deepEqual(await f.store.list(alice), [], "nothing written for the conflicting user");

  // bob merged: both hosts' used steps refused, only the code both hosts still have works.
  const doc = (await f.store.document(bob))!;
  assert.match(doc.text, new RegExp(`" DISALLOW_REUSE ${step - 1} ${step}\\n`));
  assert.equal(doc.scratchCodesOmitted, 1);
  // The code of the step web1 recorded (computed for that step: the test may have crossed a step boundary).
  const replayed = await login(f.store, bob, oathTotp(A, step - Math.floor(Date.now() / 30_000)));
  assert.ok(replayed.outcome === "rejected" && replayed.reason === "replay", "the step web1 used is refused");
  assert.equal((await login(f.store, bob, "22222222")).outcome, "rejected", "the emergency code used on web2 is refused");
  assert.equal((await login(f.store, bob, "33333333")).outcome, "accepted");

  const prefer = runCli(["db", "import", ...f.args, "--from", dir, "--prefer", "web2"]);
  assert.equal(prefer.status, 0, prefer.stderr);
  assert.match(prefer.stdout, new RegExp(`^${alice}: imported from web2; the other secret on web1 passed over \\(--prefer\\)$`, "m"));
  assert.match(prefer.stdout, new RegExp(`^${bob}: skipped: already in the database`, "m"));
  assert.equal((await f.store.document(alice))!.text.split("\n")[0], B, "web2's secret won");
});

test("import --from refuses files other users could have planted: a tree under /tmp, a file not root's", async (t) => {
  if (!systemReady(t, [])) return;
  const f = await fleet(t);
  const user = uniqueName("carol");
  const inTmp = mkdtempSync("/tmp/otpgate-import-");
  t.after(() => rmSync(inTmp, { recursive: true, force: true }));
  put(inTmp, "web1", user, `${A}\n" TOTP_AUTH\n`);
  const tmp = runCli(["db", "import", ...f.args, "--from", inTmp]);
  assert.equal(tmp.status, 2, tmp.stderr);
  assert.match(tmp.stderr, /the collected files are read as root, so the directory must be root's and writable by nobody else \(\/tmp is world-writable/);
  assert.deepEqual(await f.store.list(), []);

  const dir = rootDir(t);
  const planted = put(dir, "web1", user, `${A}\n" TOTP_AUTH\n`);
  chownSync(planted, 65534, 65534);
  const r = runCli(["db", "import", ...f.args, "--from", dir]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, new RegExp(`^${user}: CONFLICT: unusable file \\(web1: .*belongs to uid 65534, not to root`, "m"));
  assert.deepEqual(await f.store.list(), [], "nothing written");
});

test("export: the reference module accepts the file, refuses a code already used in the database; --new-codes, --force, --remove", async (t) => {
  if (!systemReady(t, ["pamtester", "oathtool", "pam_google_authenticator.so"])) return;
  const f = await fleet(t);
  const service = pamService(t, ["auth required pam_google_authenticator.so"]);
  const u = throwawayUser(t);
  assert.equal(await f.store.put(u.name, `${A}\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n11111111\n22222222\n`, "create"), "written");
  const usedInDb = oathTotp(A);
  assert.equal((await login(f.store, u.name, usedInDb)).outcome, "accepted");

  const r = runCli(["db", "export", u.name, ...f.args]);
  assert.equal(r.status, 0, r.stderr);
  const path = join(u.home, ".google_authenticator");
  const st = statSync(path);
  assert.equal(st.uid, u.uid, "written as the user");
  assert.equal(st.mode & 0o777, 0o400);
  assert.match(r.stderr, /2 emergency code\(s\) were left out: the database keeps only their digests/);
  assert.match(r.stderr, new RegExp(`${u.name} stays in the fleet database .*pass --remove`));
  assert.ok(!r.stdout.includes(A) && !r.stderr.includes(A), "no secret printed");
  assert.equal(pamtester(service, u.name, usedInDb).ok, false, "the module refuses the code the database already used");
  assert.equal(pamtester(service, u.name, oathTotp(A, 1)).ok, true, "and accepts a fresh one");

  // An existing file is kept without --force; the database is not touched either.
  const fileBefore = readFileSync(path, "latin1");
  const keep = runCli(["db", "export", u.name, ...f.args, "--new-codes"]);
  assert.equal(keep.status, 2);
  assert.match(keep.stderr, /already exists; pass --force to replace it/);
  assert.equal(readFileSync(path, "latin1"), fileBefore);
  assert.equal((await f.store.list(u.name))[0]!.scratchCodes, 2, "no new codes in the database");

  const fresh = runCli(["db", "export", u.name, ...f.args, "--new-codes", "-e", "3", "--force", "--remove"]);
  assert.equal(fresh.status, 0, fresh.stderr);
  const codes = [...fresh.stdout.matchAll(/^ {2}([0-9]{8})$/gm)].map((m) => m[1]!);
  assert.equal(codes.length, 3);
  assert.match(fresh.stderr, new RegExp(`removed ${u.name} from the fleet database`));
  assert.deepEqual(await f.store.list(u.name), []);
  assert.equal(pamtester(service, u.name, codes[0]!).ok, true, "a new emergency code works with the module");
  assert.equal(pamtester(service, u.name, "11111111").ok, false, "an old one does not");
});

test("export and import error paths: unknown user, unreachable database, missing key file, not root; nothing written", async (t) => {
  if (!systemReady(t, [])) return;
  const f = await fleet(t);
  const u = throwawayUser(t);
  const none = runCli(["db", "export", u.name, ...f.args]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, new RegExp(`${u.name} is not in the fleet database; nothing was written`));
  assert.throws(() => statSync(join(u.home, ".google_authenticator")), /ENOENT/);

  const down = runCli(["db", "import", "--store", "postgres://postgres@127.0.0.1:1/otpgate", "--db-key-file", f.args[3]!, "--user", u.name]);
  assert.notEqual(down.status, 0);
  assert.match(down.stderr, /otpgate db: .*(cannot be used right now|unavailable)/);

  const noKey = runCli(["db", "import", "--store", f.pg.url, "--db-key-file", "/nonexistent/db.key", "--user", u.name]);
  assert.equal(noKey.status, 2, noKey.stderr);
  assert.match(noKey.stderr, /\/nonexistent\/db\.key/);

  const notRoot = runCli(["db", "export", u.name, ...f.args], { uid: u.uid, gid: u.gid });
  assert.equal(notRoot.status, 2);
  assert.match(notRoot.stderr, /needs the database password and the key file, which only root can read: run it as root/);
  assert.deepEqual(await f.store.list(), []);
});

test("import --file PATH --user NAME: another secret already in the database is a conflict (exit 1, unchanged) unless --replace", async (t) => {
  if (!systemReady(t, [])) return;
  const f = await fleet(t);
  const dir = rootDir(t);
  const user = uniqueName("dora"); // no account on this host: the file is read as root from a root-only directory
  const first = put(dir, "x", user, `${A}\n" TOTP_AUTH\n44444444\n`);
  const r = runCli(["db", "import", ...f.args, "--file", first, "--user", user]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /summary: 1 imported/);

  const second = put(dir, "y", user, `${B}\n" TOTP_AUTH\n`);
  const before = await f.store.document(user);
  const conflict = runCli(["db", "import", ...f.args, "--file", second, "--user", user]);
  assert.equal(conflict.status, 1);
  assert.match(conflict.stdout, new RegExp(`^${user}: CONFLICT: already in the database with another secret; skipped \\(--replace overwrites it\\)$`, "m"));
  assert.deepEqual(await f.store.document(user), before, "unchanged");

  const replaced = runCli(["db", "import", ...f.args, "--file", second, "--user", user, "--replace"]);
  assert.equal(replaced.status, 0, replaced.stderr);
  assert.match(replaced.stdout, /replacing the database's account \(--replace\)/);
  assert.equal((await f.store.document(user))!.text.split("\n")[0], B);

  // A file in a directory other users can change, for a name with no account here: refused, not read as root.
  const tmp = mkdtempSync("/tmp/otpgate-file-");
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  writeFileSync(join(tmp, "f"), `${A}\n" TOTP_AUTH\n`, { mode: 0o600 });
  const other = uniqueName("eve");
  const refused = runCli(["db", "import", ...f.args, "--file", join(tmp, "f"), "--user", other]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /its directory can be changed by users other than root, and .* is not an account on this host to read it as/);
  assert.deepEqual(await f.store.list(other), []);
});

test("import of this host's files reads each as its owner: a symlink to root's file, or a root-owned file in the home, is not imported", async (t) => {
  if (!systemReady(t, [])) return;
  const f = await fleet(t);
  const dir = rootDir(t);
  const rootsFile = join(dir, "root-only");
  writeFileSync(rootsFile, `${A}\n" TOTP_AUTH\n55555555\n`, { mode: 0o600 });
  const u = throwawayUser(t);
  const path = join(u.home, ".google_authenticator");
  sh("ln", ["-s", rootsFile, path]);
  const viaLink = runCli(["db", "import", ...f.args, "--user", u.name]);
  assert.equal(viaLink.status, 1, viaLink.stderr);
  assert.match(viaLink.stdout, new RegExp(`^${u.name}: CONFLICT: unusable file \\(.*is a symbolic link`, "m"));
  assert.deepEqual(await f.store.list(u.name), [], "root's file was not imported as the user's");

  rmSync(path);
  writeFileSync(path, `${A}\n" TOTP_AUTH\n55555555\n`, { mode: 0o600 }); // root's, in the user's home
  const rootOwned = runCli(["db", "import", ...f.args, "--user", u.name]);
  assert.equal(rootOwned.status, 1, rootOwned.stderr);
  assert.match(rootOwned.stdout, /cannot read .*: permission denied/, "read as the user, who cannot read root's file");
  assert.deepEqual(await f.store.list(u.name), []);

  // Every account of this host (no --user): the user's own file is found and planned.
  chownSync(path, u.uid, u.gid);
  const all = runCli(["db", "import", ...f.args, "--dry-run"]);
  assert.match(all.stdout, new RegExp(`^${u.name}: would import from `, "m"));
  assert.deepEqual(await f.store.list(u.name), [], "--dry-run writes nothing");
});
