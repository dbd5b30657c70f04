// otpgate status, codes and qr on real users' files.
import assert from "node:assert/strict";
import { chownSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { scratchEntries } from "../../src/formats/ga-document.js";
import { gridPng, inkGrid } from "../helpers/qr-image.js";
import { oathTotp, runCli, systemReady, tempDir, throwawayUser, zbarimg } from "../helpers/system.js";

const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
const lines = (...l: string[]) => l.join("\n") + "\n";

test("status: settings, codes left, last use and rate-limit state, never the secret; exit codes", (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const dir = tempDir(t);
  const path = join(dir, "ga");
  writeFileSync(path, lines(SECRET, '" RATE_LIMIT 3 30', '" WINDOW_SIZE 17', '" DISALLOW_REUSE', '" TOTP_AUTH', "11111111", "22222222"), { mode: 0o400 });
  assert.equal(runCli(["verify", "-s", path, oathTotp(SECRET)]).status, 0);
  const r = runCli(["status", "-s", path]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /root: enrolled, time-based \(SHA1, 6 digits, 30 s steps\)/);
  assert.match(r.stdout, /window: +17 codes \(-8\.\.\+8 steps\)/);
  assert.match(r.stdout, /code reuse: +refused/);
  assert.match(r.stdout, /rate limit: +3 attempts per 30 s; not limited now \(1 recent attempt\)/);
  assert.match(r.stdout, /emergency codes: 2 left/);
  assert.match(r.stdout, /last accepted: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  const json = JSON.parse(runCli(["status", "-s", path, "--json"]).stdout) as Record<string, unknown>;
  assert.equal(json.enrolled, true);
  assert.equal(json.emergencyCodesLeft, 2);
  assert.equal(json.rateLimitedNow, false);
  for (const out of [r.stdout, JSON.stringify(json)]) {
    assert.doesNotMatch(out, /FJZHBX|11111111|22222222/, "never the secret or a code");
  }
  runCli(["verify", "-s", path, "000000"]);
  runCli(["verify", "-s", path, "000001"]);
  assert.match(runCli(["status", "-s", path]).stdout, /RATE-LIMITED now \(3 recent attempts\)/);
  const none = runCli(["status", "-s", join(dir, "nobody")]);
  assert.equal(none.status, 1);
  assert.match(none.stdout, /not enrolled/);
  writeFileSync(join(dir, "open"), lines(SECRET, '" TOTP_AUTH'), { mode: 0o644 });
  const open = runCli(["status", "-s", join(dir, "open")]);
  assert.equal(open.status, 2);
  assert.match(open.stdout, /state file unusable: .*permissions 0644/);
});

test("status --all (root) lists every enrolled user, one line each", (t) => {
  if (!systemReady(t, [])) return;
  const alice = throwawayUser(t);
  const bob = throwawayUser(t);
  assert.equal(runCli(["enroll", "--user", alice.name, "-t", "-d", "-W", "-r", "3", "-R", "30", "-q"]).status, 0);
  assert.equal(runCli(["enroll", "--user", bob.name, "-c", "-W", "-u", "-q", "-e", "2"]).status, 0);
  const r = runCli(["status", "--all"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${alice.name} +totp  window 3  reuse off  rate 3/30s  5 codes$`, "m"));
  assert.match(r.stdout, new RegExp(`^${bob.name} +hotp  window 1  no rate limit  2 codes$`, "m"));
  const rows = JSON.parse(runCli(["status", "--all", "--json"]).stdout) as { user: string }[];
  assert.ok(rows.some((row) => row.user === alice.name) && rows.some((row) => row.user === bob.name));
  const asUser = runCli(["status", "--all"], { uid: alice.uid, gid: alice.gid });
  assert.equal(asUser.status, 2);
  assert.match(asUser.stderr, /--all reads every user's state file: run it as root/);
});

test("codes --regenerate: new codes work once, old ones no longer; the rest of the file is kept", (t) => {
  if (!systemReady(t, [])) return;
  const user = throwawayUser(t);
  const path = join(user.home, ".google_authenticator");
  writeFileSync(path, lines(SECRET, '" RATE_LIMIT 5 30 1', '" DISALLOW_REUSE 7', '" TOTP_AUTH', "11111111", "22222222"), { mode: 0o400 });
  chownSync(path, user.uid, user.gid);
  const count = runCli(["codes", "--user", user.name]);
  assert.equal(count.status, 0);
  assert.match(count.stdout, /has 2 emergency codes left/);
  assert.doesNotMatch(count.stdout, /11111111/);
  const r = runCli(["codes", "--regenerate", "-e", "3"], { uid: user.uid, gid: user.gid, env: { PATH: "/usr/bin:/bin", HOME: user.home } });
  assert.equal(r.status, 0, r.stderr);
  const shown = [...r.stdout.matchAll(/^ {2}(\d{8})$/gm)].map((m) => Number(m[1]));
  assert.equal(shown.length, 3);
  const text = readFileSync(path, "latin1");
  assert.deepEqual(
    scratchEntries(text).map((e) => e.code),
    shown,
  );
  assert.match(text, /^FJZH\S+\n" RATE_LIMIT 5 30 1\n" DISALLOW_REUSE 7\n" TOTP_AUTH\n/);
  assert.equal(runCli(["verify", "--user", user.name, "11111111"]).status, 1, "an old code no longer works");
  assert.equal(runCli(["verify", "--user", user.name, String(shown[0])]).status, 0);
  assert.equal(runCli(["verify", "--user", user.name, String(shown[0])]).status, 1, "a new code works once");
  const bad = runCli(["codes", "--user", user.name, "--regenerate", "-e", "0"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /-e requires an argument in the range 1\.\.10/);
  rmSync(path);
  assert.equal(runCli(["codes", "--user", user.name, "--regenerate"]).status, 1);
});

test("qr: the owner sees a scannable code; root sees it with a warning; other users are refused", (t) => {
  if (!systemReady(t, ["zbarimg"])) return;
  const user = throwawayUser(t);
  const other = throwawayUser(t);
  assert.equal(runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-u", "-q", "-S", "60"]).status, 0);
  const secret = readFileSync(join(user.home, ".google_authenticator"), "latin1").split("\n")[0]!;
  const own = runCli(["qr", "-l", "me@box", "-i", "box"], { uid: user.uid, gid: user.gid, env: { PATH: "/usr/bin:/bin", HOME: user.home } });
  assert.equal(own.status, 0, own.stderr);
  assert.equal(own.stderr, "");
  const dir = tempDir(t);
  writeFileSync(
    join(dir, "qr.png"),
    gridPng(inkGrid(own.stdout.slice(0, own.stdout.indexOf("Secret key:")), "UTF8"), (ink) => ink),
  );
  assert.equal(zbarimg(join(dir, "qr.png")), `otpauth://totp/me@box?secret=${secret}&issuer=box&period=60`);
  const root = runCli(["qr", "--user", user.name, "-Q", "NONE"]);
  assert.equal(root.status, 0);
  assert.match(root.stderr, new RegExp(`warning: showing ${user.name}'s secret`));
  const refused = runCli(["qr", "--user", user.name], { uid: other.uid, gid: other.gid });
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /only root can act on another user's account/);
  assert.equal(runCli(["qr", "--user", other.name]).status, 1, "not enrolled");
});
