// The store owns privileges (issue 10): a user whose state path (secret=) lies under a directory
// the user controls swaps that directory for a symlink to a root-owned directory in a tight loop,
// while logins run through the resident server (otpgate radius) and through otpgate pam under the
// real pam_exec. Root must never create, rename or read anything in the root-owned directory.
// Checked without inotify: the directory's inode, mtime and entries, and a canary state file there
// whose inode, mtime, content and access time must not change (its atime is set before its mtime,
// so under relatime any read moves it; the test first proves that a read does move it here).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chownSync, closeSync, constants, copyFileSync, openSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ACCESS_ACCEPT } from "../../src/adapters/radius/packet.js";
import { codeAt } from "../helpers/otp.js";
import { ask, sleep, startRadius } from "../helpers/radius.js";
import { CLI, pamService, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const RACE_MS = 20_000;

let lastPamOutput = "";

/** pamtester, asynchronously (the test's timers keep running meanwhile). */
function pamtesterAsync(service: string, user: string, entry: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("pamtester", [service, user, "authenticate"], { stdio: ["pipe", "pipe", "pipe"], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      lastPamOutput = out;
      resolve(code === 0);
    });
    child.stdin!.end(entry + "\n");
  });
}

/** What must stay exactly as it is in the root-owned directory (without reading the canary). */
function fingerprint(dir: string, canary: string) {
  const d = statSync(dir, { bigint: true });
  const c = statSync(canary, { bigint: true });
  return {
    dirIno: d.ino,
    dirMtime: d.mtimeNs,
    entries: readdirSync(dir).sort(),
    canaryIno: c.ino,
    canaryMtime: c.mtimeNs,
    canaryAtime: c.atimeNs,
  };
}

/** An old access time below the modification time: the next read of the file moves it (relatime). */
function armAtime(path: string): void {
  const st = statSync(path);
  utimesSync(path, new Date(1000), st.mtime);
}

describe("the file store acts as the owner, never as root", () => {
  test("secret= under a directory the user swaps for a symlink to a root-owned one (raced): otpgate radius and otpgate pam create, rename and read nothing there", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    const user = throwawayUser(t);
    const otp = join(user.home, ".otp");
    mkdirSync(otp, { mode: 0o700 });
    chownSync(otp, user.uid, user.gid);
    const r = runCli(["enroll", "--user", user.name, "-s", "~/.otp/ga", "-c", "-w", "3", "-u", "-q"]);
    assert.equal(r.status, 0, r.stderr);
    const state = join(otp, "ga");
    const secret = readFileSync(state, "latin1").split("\n")[0]!;
    // The test reads the counter through a descriptor of the real directory, wherever the racer
    // has moved it (a wrong HOTP code advances the counter too, so every attempt starts from it).
    const dirFd = openSync(otp, constants.O_RDONLY | constants.O_DIRECTORY);
    t.after(() => closeSync(dirFd));
    const counterNow = () => Number(/^" HOTP_COUNTER (\d+)$/m.exec(readFileSync(`/proc/self/fd/${dirFd}/ga`, "latin1"))![1]);

    // The root-owned directory, with a canary where root would find "the state file" after a swap:
    // a copy of the user's own file, owned by the user (the user could never put it there).
    const rootOnly = tempDir(t, "otpgate-rootonly-");
    const canary = join(rootOnly, "ga");
    copyFileSync(state, canary);
    chownSync(canary, user.uid, user.gid);
    armAtime(canary);
    // The detector works on this file system: a read of an armed file moves its access time.
    const probe = join(tempDir(t, "otpgate-probe-"), "probe");
    copyFileSync(state, probe);
    armAtime(probe);
    const armed = statSync(probe, { bigint: true }).atimeNs;
    readFileSync(probe);
    assert.notEqual(statSync(probe, { bigint: true }).atimeNs, armed, "a read moves the access time of an armed file (relatime)");
    const canaryText = readFileSync(state, "latin1");
    const before = fingerprint(rootOnly, canary);

    const server = await startRadius(t, ["--state", "~/.otp/ga"]);
    const service = pamService(t, [
      `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam secret=~/.otp/ga`,
      "auth requisite pam_deny.so",
      "auth required pam_permit.so",
    ]);

    // The user's racer: atomically exchanges ~/.otp with a symlink to the root-owned directory
    // (renameat2 RENAME_EXCHANGE, so the path always exists): bursts of up to 1000 swaps as fast as
    // it can, with pauses of up to 80 ms in either state, so every timing occurs (and some logins
    // get through a whole read-commit cycle unswapped, which exercises the commit path).
    const racerScript = [
      "import ctypes, os, random, time",
      "libc = ctypes.CDLL(None, use_errno=True)",
      `os.chdir(${JSON.stringify(user.home)})`,
      `os.symlink(${JSON.stringify(rootOnly)}, ".otp.swap")`,
      `end = time.time() + ${RACE_MS / 1000}`,
      "n = 0",
      "while time.time() < end:",
      "    k = random.randint(1, 1000)",
      "    for _ in range(k):",
      "        libc.renameat2(-100, b'.otp', -100, b'.otp.swap', 2)",
      "    n += k",
      "    time.sleep(random.choice([0, 0, 0.001, 0.003, 0.02, 0.08]))",
      "if os.path.islink('.otp'): libc.renameat2(-100, b'.otp', -100, b'.otp.swap', 2)",
      "print(n)",
    ].join("\n");
    const racer = spawn("/usr/bin/python3", ["-c", racerScript], { uid: user.uid, gid: user.gid, stdio: ["ignore", "pipe", "inherit"] });
    let swaps = "";
    racer.stdout!.on("data", (d: Buffer) => (swaps += d.toString()));
    const racerDone = new Promise<void>((res) => racer.on("exit", () => res()));
    t.after(() => racer.kill("SIGKILL"));
    let running = true;
    void racerDone.then(() => (running = false));

    // Right codes, so accepted logins commit (read, temp write, rename, fsync) during the race.
    const tally = { radius: 0, radiusAccepted: 0, pam: 0, pamAccepted: 0 };
    // Two phases under the same racer: the resident server first, then otpgate pam.
    const phaseEnd = Date.now() + RACE_MS / 2;
    const radiusWorker = async () => {
      while (running && Date.now() < phaseEnd) {
        const answer = await ask(server.port, server.secret, user.name, codeAt(secret, counterNow()), 2000);
        tally.radius++;
        if (answer.code === ACCESS_ACCEPT) tally.radiusAccepted++;
      }
    };
    const pamWorker = async () => {
      while (running) {
        const ok = await pamtesterAsync(service, user.name, codeAt(secret, counterNow()));
        tally.pam++;
        if (ok) tally.pamAccepted++;
      }
    };
    await Promise.all(Array.from({ length: 6 }, radiusWorker));
    await Promise.all(Array.from({ length: 4 }, pamWorker));
    await racerDone;
    await sleep(200);
    t.diagnostic(`${swaps.trim() || "(killed early)"} swaps; ${JSON.stringify(tally)}`);
    t.diagnostic(`last pamtester output: ${lastPamOutput.trim()}`);
    t.diagnostic(`server reasons: ${JSON.stringify([...new Set(server.stdout().map((l) => /"reason":"([^"]*)"/.exec(l)?.[1]))])}`);

    assert.deepEqual(fingerprint(rootOnly, canary), before, "nothing was created, renamed, written or read in the root-owned directory");
    assert.equal(readFileSync(canary, "latin1"), canaryText);
    assert.ok(tally.radius >= 100 && tally.pam >= 10, `the race was exercised (${JSON.stringify(tally)})`);
    assert.ok(tally.radiusAccepted >= 1 && tally.pamAccepted >= 1, `accepted logins committed during the race (${JSON.stringify(tally)})`);

    // Once the user stops racing, both still work, and the state file is still the user's.
    const next = counterNow();
    assert.equal((await ask(server.port, server.secret, user.name, codeAt(secret, next))).code, ACCESS_ACCEPT);
    assert.equal(await pamtesterAsync(service, user.name, codeAt(secret, next + 1)), true);
    assert.equal(statSync(state).uid, user.uid);
    assert.deepEqual(readdirSync(otp), ["ga"], "no temp file left behind in the user's directory");
  });
});
