// SSH with key + password + code through the RADIUS backend (issue 10, "a wrong password never
// burns the code"): `otpgate setup ssh --backend radius --factors key+password+code` puts pam_unix
// BEFORE pam_radius_auth with [success=ok default=die], so on a wrong password the stack ends
// before the code is asked, let alone sent to `otpgate radius`: the state file stays byte-identical
// and the same code then works with the right password. A real sshd on 127.0.0.1 with its own PAM
// service, a real `otpgate radius`, a real client (paramiko).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { privateSshd, type PrivateSshd } from "../helpers/sshd.js";
import { CLI, ROOT, oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const PAM_RADIUS = "/lib/x86_64-linux-gnu/security/pam_radius_auth.so";

function setupSsh(s: PrivateSshd, extra: string[]) {
  return runCli(["setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--node", process.execPath, "--otpgate", CLI, ...extra]);
}

/** Key, then keyboard-interactive with one answer per prompt in order (password, then code). */
function loginAnswers(s: PrivateSshd, user: string, answers: string[]): { ok: boolean; stage: string; prompts: string[][]; error?: string } {
  const r = spawnSync("/usr/bin/python3", [join(ROOT, "test/helpers/ssh_login_answers.py"), "127.0.0.1", String(s.port), user, s.clientKey, ...answers], { encoding: "utf8", timeout: 60_000 });
  return JSON.parse(r.stdout) as { ok: boolean; stage: string; prompts: string[][]; error?: string };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

describe("ssh: key + password + code through pam_unix, pam_radius_auth.so and otpgate radius", () => {
  test("wrong password + right code: refused before the code is asked, state unchanged; the same code then works with the right password", { timeout: 180_000 }, async (t: TestContext) => {
    if (!systemReady(t, ["python3", "oathtool"]) || !existsSync(PAM_RADIUS)) {
      if (process.env.REQUIRE_SYSTEM_TESTS === "1" && !existsSync(PAM_RADIUS)) throw new Error("libpam-radius-auth is missing (scripts/install-test-deps.sh)");
      return;
    }
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    const gina = throwawayUser(t);
    s.authorize(gina);
    assert.equal(runCli(["enroll", "--user", gina.name, "-t", "-d", "-W", "-u", "-q"]).status, 0);
    spawnSync("chpasswd", { input: `${gina.name}:S3cond-f4ctor!\n` });
    const port = 30000 + Math.floor(Math.random() * 20000);
    const r = setupSsh(s, ["--admin", gina.name, "--backend", "radius", "--radius-port", String(port), "--factors", "key+password+code"]);
    assert.equal(r.status, 0, r.stderr);
    const pam = readFileSync(join(s.root, "etc/pam.d", s.service), "utf8");
    // The order is the guarantee: key check, then the password (any failure ends the stack), then the code.
    const auth = pam.split("\n").filter((l) => /^auth\s/.test(l));
    assert.equal(auth.length, 3, pam);
    assert.match(auth[0]!, /^auth +requisite +pam_exec\.so quiet quiet_log \/bin\/sh -c /);
    assert.match(auth[1]!, /^auth +\[success=ok default=die\] pam_unix\.so$/);
    assert.match(auth[2]!, /^auth +required +pam_radius_auth\.so conf=\S+pam_radius\.conf \[prompt=Verification code\] force_prompt$/);
    s.installPam();
    const checker = spawn(process.execPath, [CLI, "radius", "--listen", `127.0.0.1:${port}`, "--secret-file", join(s.root, "etc/otpgate/radius.secret")], { stdio: ["ignore", "pipe", "pipe"] });
    let checkerLog = "";
    checker.stdout!.on("data", (d: Buffer) => (checkerLog += d.toString()));
    t.after(() => {
      if (checker.exitCode === null) checker.kill("SIGKILL");
    });
    await new Promise<void>((resolve, reject) => {
      checker.stderr!.on("data", (d: Buffer) => {
        checkerLog += d.toString();
        if (d.toString().includes("listening")) resolve();
      });
      checker.on("exit", () => reject(new Error("otpgate radius exited")));
    });
    await s.start();
    const statePath = join(gina.home, ".google_authenticator");
    const secret = readFileSync(statePath, "latin1").split("\n")[0]!;
    const before = readFileSync(statePath);
    const code = oathTotp(secret);

    const wrong = loginAnswers(s, gina.name, ["wrong-password", code]);
    assert.equal(wrong.ok, false, "wrong password, right code");
    // (sshd may end keyboard-interactive with an empty round: only rounds with prompts count.)
    assert.deepEqual(
      wrong.prompts.filter((p) => p.length > 0),
      [["Password: "]],
      "the code is never asked after a wrong password",
    );
    assert.deepEqual(readFileSync(statePath), before, "the state file is byte-identical after a wrong password");
    await settle(); // spawnSync held the event loop: let the checker's log lines arrive
    assert.doesNotMatch(checkerLog, new RegExp(gina.name), "otpgate radius never heard of this login");

    const ok = loginAnswers(s, gina.name, ["S3cond-f4ctor!", code]);
    assert.equal(ok.ok, true, JSON.stringify(ok) + s.log().slice(-2000));
    assert.deepEqual(
      ok.prompts.filter((p) => p.length > 0),
      [["Password: "], ["Verification code: "]],
    );
    assert.notDeepEqual(readFileSync(statePath), before, "the accepted code was recorded (DISALLOW_REUSE)");
    await settle();
    assert.match(checkerLog, new RegExp(`"user":"${gina.name}".*"result":"accepted"`), "otpgate radius logged the login it decided");

    assert.equal(loginAnswers(s, gina.name, ["S3cond-f4ctor!", code]).ok, false, "the code is used up");
    assert.equal(loginAnswers(s, gina.name, ["S3cond-f4ctor!", "000000"]).ok, false, "right password, wrong code");
    assert.equal(loginAnswers(s, gina.name, ["", oathTotp(secret, 1)]).ok, false, "empty password");
    // doctor reads this stack as setup wrote it: nothing about the PAM lines is flagged.
    const doctor = runCli(["doctor", "--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", gina.name]);
    assert.doesNotMatch(doctor.stdout, /(FAIL|WARN) +pam/, doctor.stdout);
    assert.match(doctor.stdout, /ok +pam:\S+ +\S+: the password \(pam_unix\.so\) must succeed before pam_radius_auth\.so sends the code/, doctor.stdout);

    // Why the order matters: with "required" the stack goes on after a wrong password, the right
    // code reaches otpgate radius and is used up by a login that fails. doctor says so.
    const pamFile = join(s.root, "etc/pam.d", s.service);
    writeFileSync(pamFile, readFileSync(pamFile, "utf8").replace(/^auth +\[success=ok default=die\] pam_unix\.so$/m, "auth required pam_unix.so"));
    s.installPam();
    const weak = runCli(["doctor", "--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", gina.name]);
    assert.match(weak.stdout, /FAIL +pam:\S+ +\S+: after a wrong password "auth required pam_unix\.so" lets the stack go on to pam_radius_auth\.so/, weak.stdout);
    const step = Math.floor(Date.now() / 30_000);
    const burnt = oathTotp(secret, 1);
    const beforeWeak = readFileSync(statePath);
    assert.equal(loginAnswers(s, gina.name, ["wrong-password", burnt]).ok, false);
    assert.notDeepEqual(readFileSync(statePath), beforeWeak, "with required, a wrong password let the code through and it was recorded");
    if (Math.floor(Date.now() / 30_000) <= step + 1) {
      assert.equal(loginAnswers(s, gina.name, ["S3cond-f4ctor!", burnt]).ok, false, "the code was burnt by the failed login");
    }
  });
});
