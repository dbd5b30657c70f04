// One QR file writer for enroll and qr (review 2, F6): exclusive create of a temp file (O_EXCL,
// O_NOFOLLOW) next to the target, then rename: a planted symlink or file is replaced, never written
// through; root refuses a directory someone else could swap (sticky root-owned ones like /tmp are
// fine: names there cannot be swapped under root).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chownSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, tempDir, throwawayUser, uniqueName } from "../helpers/system.js";

test(
  "qr --qr-png -f as root: a planted symlink is not followed, a planted file never gets the QR, a user's directory is refused",
  { skip: process.geteuid?.() !== 0 && "needs root", timeout: 60_000 },
  (t) => {
    const user = throwawayUser(t);
    const dir = tempDir(t);
    const state = join(dir, "ga");
    assert.equal(runCli(["enroll", "-s", state, "-q", "-t", "-d", "-W", "-u"]).status, 0);
    const victim = join(dir, "victim");
    writeFileSync(victim, "important root file\n", { mode: 0o600 });
    const link = join("/tmp", `${uniqueName("otpgate-qrlink")}.png`);
    const planted = join("/tmp", `${uniqueName("otpgate-qrplant")}.png`);
    const userDir = join("/tmp", uniqueName("otpgate-qrdir"));
    t.after(() => rmSync(link, { force: true }));
    t.after(() => rmSync(planted, { force: true }));
    t.after(() => rmSync(userDir, { recursive: true, force: true }));
    symlinkSync(victim, link);
    writeFileSync(planted, "", { mode: 0o666 });
    chmodSync(planted, 0o666);
    chownSync(planted, user.uid, user.gid);
    mkdirSync(userDir, { mode: 0o755 });
    chownSync(userDir, user.uid, user.gid);

    const r1 = runCli(["qr", "-s", state, "--qr-mode", "NONE", "--qr-png", link, "-f"]);
    assert.equal(readFileSync(victim, "utf8"), "important root file\n", `the symlink's target is untouched (${r1.stderr})`);
    if (r1.status === 0) assert.ok(!lstatSync(link).isSymbolicLink(), "the link was replaced, not followed");

    const r2 = runCli(["qr", "-s", state, "--qr-mode", "NONE", "--qr-png", planted, "-f"]);
    const st = lstatSync(planted);
    if (r2.status === 0) {
      assert.equal(st.uid, 0, "a new file of root's replaced the planted one");
      assert.equal(st.mode & 0o777, 0o600);
    } else assert.equal(st.size, 0, "the planted file got nothing");
    const readable = spawnSync("test", ["-r", planted], { uid: user.uid, gid: user.gid });
    if (st.size > 0) assert.notEqual(readable.status, 0, "the user cannot read the QR");

    const inUserDir = join(userDir, "qr.png");
    const r3 = runCli(["qr", "-s", state, "--qr-mode", "NONE", "--qr-png", inUserDir]);
    assert.notEqual(r3.status, 0, "root refuses to write into a directory the user can swap");
    assert.match(r3.stderr, /can be changed by|swap/);
    assert.ok(!existsSync(inUserDir));
  },
);
