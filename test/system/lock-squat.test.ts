// Red-team finding F1: the per-account lock is an abstract socket, whose name every local user can
// read in /proc/net/unix. An unprivileged user who binds it must not be able to block the owner's
// logins, nor make two concurrent logins both accept the same code.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { lockName } from "../../src/platform/lock.js";
import { startServer } from "../helpers/server.js";
import { CLI, ROOT, enrolledUser, oathTotp, pamService, pamtester, syslogListener, systemReady, throwawayUser } from "../helpers/system.js";

const SQUATTER = join(ROOT, "test/helpers/lock_squatter.py");
const MODES = ["bind", "garbage", "silent"] as const;

const stack = (logSocket: string) => [
  `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam log_socket=${logSocket}`,
  "auth requisite pam_deny.so",
  "auth required pam_permit.so",
];

/** The generation-0 lock name of a user's state file, as an attacker watching /proc/net/unix sees it. */
function victimLockName(home: string, secret: string): string {
  const dir = statSync(home, { bigint: true });
  return lockName(secret, [String(dir.dev), String(dir.ino), ".google_authenticator"]);
}

/**
 * Squat `name` as `uid` the way an attacker reading /proc/net/unix does: Node 20 binds an abstract
 * name NUL-padded to the whole sun_path (that is the one seen there); the exact-length form is taken
 * too, in case a later Node binds that one.
 */
async function squat(t: TestContext, uid: number, gid: number, mode: string, name: string): Promise<void> {
  await squatOne(t, uid, gid, mode, name.slice(1));
  await squatOne(t, uid, gid, mode, name.slice(1).padEnd(107, "\0"));
}

/** Start one squatter as `uid`; resolves once it holds the name. Killed (by PID) after the test. */
async function squatOne(t: TestContext, uid: number, gid: number, mode: string, name: string): Promise<ChildProcess> {
  const child = spawn("python3", [SQUATTER, mode, Buffer.from(name, "latin1").toString("hex")], { uid, gid, stdio: ["ignore", "pipe", "pipe"], env: { PATH: "/usr/bin:/bin" } });
  t.after(() => {
    child.kill("SIGKILL");
  });
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
    child.on("exit", (code) => reject(new Error(`squatter (${mode}) exited ${code}: ${err}`)));
  });
  return child;
}

function verifyAsync(user: string, code: string): Promise<number | null> {
  const child = spawn(process.execPath, [CLI, "verify", "--user", user, code], { stdio: "ignore", env: { PATH: "/usr/bin:/bin" } });
  return new Promise((r) => child.on("exit", (c) => r(c)));
}

describe("a local user squatting the account lock (F1)", () => {
  for (const mode of MODES) {
    test(
      `squatter that ${mode === "bind" ? "binds only" : mode === "garbage" ? "answers garbage" : "never answers"}: the owner's right code is still accepted through otpgate pam, once`,
      { timeout: 60_000 },
      async (t) => {
        if (!systemReady(t, ["pamtester", "oathtool", "python3"])) return;
        const log = syslogListener(t);
        const { user, secret } = enrolledUser(t);
        const attacker = throwawayUser(t);
        await squat(t, attacker.uid, attacker.gid, mode, victimLockName(user.home, secret));
        const service = pamService(t, stack(log.socket));
        const code = oathTotp(secret);
        const started = Date.now();
        const first = pamtester(service, user.name, code);
        assert.equal(first.ok, true, `the right code is accepted despite the squatter: ${first.out} ${log.lines().join("\n")}`);
        assert.match(log.lines()[0] ?? "", /result=accepted via=totp$/);
        assert.ok(Date.now() - started < 4000, `no lock-timeout wait (${Date.now() - started} ms)`);
        assert.equal(pamtester(service, user.name, code).ok, false, "and only once (DISALLOW_REUSE)");
      },
    );
  }

  test("two real logins with the same code while a squatter holds the first lock name: exactly one accepted", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool", "python3"])) return;
    const { user, secret } = enrolledUser(t);
    const attacker = throwawayUser(t);
    await squat(t, attacker.uid, attacker.gid, "garbage", victimLockName(user.home, secret));
    const code = oathTotp(secret);
    const exits = await Promise.all(Array.from({ length: 8 }, () => verifyAsync(user.name, code)));
    assert.equal(exits.filter((e) => e === 0).length, 1, `exit codes: ${exits.join(" ")}`);
    assert.equal(exits.filter((e) => e === 1).length, 7, `the others are refused as a replay, not an error: ${exits.join(" ")}`);
  });

  test("the resident server: the right code is accepted once while a squatter holds the name, and concurrent decides accept exactly once", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool", "python3"])) return;
    const { user, secret } = enrolledUser(t);
    const attacker = throwawayUser(t);
    await squat(t, attacker.uid, attacker.gid, "garbage", victimLockName(user.home, secret));
    const server = await startServer(t);
    const code = oathTotp(secret);
    const results = await Promise.all(Array.from({ length: 6 }, () => server.client.decide({ user: user.name, code, service: "gateway" })));
    const outcomes = results.map((r) => r.outcome);
    assert.equal(outcomes.filter((o) => o === "accepted").length, 1, JSON.stringify(results));
    assert.equal(outcomes.filter((o) => o === "rejected").length, 5, JSON.stringify(results));
    assert.match(server.stderr() + server.stdout(), /lock-squatted/, "the squatted name is reported");
  });
});
