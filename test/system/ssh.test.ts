// SSH with key + code, end to end: a real OpenSSH sshd on 127.0.0.1 with its own config and PAM
// service, configured by `otpgate setup ssh --root`, and a real client (paramiko).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { privateSshd, type PrivateSshd } from "../helpers/sshd.js";
import { CLI, oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const secretOf = (home: string) => readFileSync(join(home, ".google_authenticator"), "latin1").split("\n")[0]!;

function setupSsh(s: PrivateSshd, extra: string[]) {
  return runCli(["setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--node", process.execPath, "--otpgate", CLI, ...extra]);
}

/** Every file under root/etc except otpgate's backups (kept on purpose). */
function configFiles(s: PrivateSshd): Record<string, string> {
  return Object.fromEntries(Object.entries(snapshot(s)).filter(([p]) => !p.includes(".otpgate-backup-")));
}

function snapshot(s: PrivateSshd): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, name.name);
      if (name.isDirectory()) walk(p);
      else if (name.isFile()) files[p] = readFileSync(p, "latin1");
    }
  };
  walk(join(s.root, "etc"));
  return files;
}

describe("ssh: key + code through otpgate pam", () => {
  test("logins: right code in; wrong, replayed, junk, no key, not enrolled out; nullok lets the unenrolled in", { timeout: 180_000 }, async (t: TestContext) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    const alice = throwawayUser(t);
    const bob = throwawayUser(t);
    s.authorize(alice);
    s.authorize(bob);
    assert.equal(runCli(["enroll", "--user", alice.name, "-t", "-d", "-W", "-u", "-q"]).status, 0);

    const r = setupSsh(s, ["--admin", alice.name]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /keep this session open/);
    assert.ok(existsSync(join(s.root, "etc/ssh/sshd_config.d/10-otpgate.conf")), "drop-in, because sshd_config includes the directory");
    const pam = readFileSync(join(s.root, "etc/pam.d", s.service), "utf8");
    assert.match(pam, /^#otpgate-disabled# @include common-auth$/m);
    assert.match(
      pam,
      /auth +\[success=1 ignore=1 default=ignore\] pam_exec\.so quiet quiet_log expose_authtok \/usr\/bin\/env (-u [A-Z_0-9]+ )+PATH=\S+ \S+node \S+otpgate\.cjs pam require_publickey noskewadj$/m,
    );
    s.installPam();
    await s.start();

    const secret = secretOf(alice.home);
    const code = oathTotp(secret);
    const ok = s.login(alice.name, code);
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.match(ok.prompts[0]![0]!, /Verification code required for .*\nPassword: $|Password: $/);
    assert.equal(s.login(alice.name, code).ok, false, "a replayed code is refused");
    assert.equal(s.login(alice.name, String((Number(code) + 1) % 1000000).padStart(6, "0")).ok, false, "a wrong code is refused");
    assert.equal(s.login(alice.name, "'; rm -rf / #\u00e9x 12345678901234567890").ok, false, "junk is refused");
    const noKey = s.login(alice.name, oathTotp(secret, 1), { noKey: true });
    assert.equal(noKey.ok, false, "without the key the code alone is not enough");
    assert.equal(s.login(alice.name, oathTotp(secret, 1)).ok, true, "the code not used up by the keyless attempt still works");
    assert.equal(s.login(bob.name, "123456").ok, false, "a user who is not enrolled is refused");

    const again = setupSsh(s, ["--admin", alice.name, "--nullok"]);
    assert.equal(again.status, 0, again.stderr);
    s.installPam();
    assert.equal(s.login(bob.name, "anything").ok, true, "with --nullok an unenrolled user gets in with the key alone");
    assert.equal(s.login(alice.name, "000000").ok, false, "enrolled users still need their code");
  });

  test("key + password + code at one prompt", { timeout: 120_000 }, async (t: TestContext) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    const carol = throwawayUser(t);
    s.authorize(carol);
    runCli(["enroll", "--user", carol.name, "-t", "-d", "-W", "-u", "-q"]);
    const { spawnSync } = await import("node:child_process");
    spawnSync("chpasswd", { input: `${carol.name}:Tr0ub4dor&3\n` });
    const r = setupSsh(s, ["--admin", carol.name, "--factors", "key+password+code"]);
    assert.equal(r.status, 0, r.stderr);
    s.installPam();
    await s.start();
    const secret = secretOf(carol.home);
    const statePath = join(carol.home, ".google_authenticator");
    const before = readFileSync(statePath);
    const code = oathTotp(secret);
    assert.equal(s.login(carol.name, "wrong-pw" + code).ok, false, "wrong password, right code");
    assert.deepEqual(readFileSync(statePath), before, "a wrong password leaves the state file byte-identical");
    assert.equal(s.login(carol.name, "Tr0ub4dor&3" + "000000").ok, false, "right password, wrong code");
    // The SAME code, now with the right password: the wrong password did not use it up.
    const ok = s.login(carol.name, "Tr0ub4dor&3" + code);
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.match(ok.prompts[0]![0]!, /password immediately followed by your 6-digit code/);
    assert.equal(s.login(carol.name, "Tr0ub4dor&3" + code).ok, false, "then it is used up");
  });
});

describe("otpgate setup ssh: safety", () => {
  test("--dry-run changes nothing; a second run is a no-op; --rollback restores byte for byte", (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    const before = snapshot(s);
    const dry = setupSsh(s, ["--allow-unenrolled", "--dry-run"]);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /^--- \/dev\/null\n\+\+\+ .*10-otpgate\.conf/m);
    assert.match(dry.stdout, /^\+AuthenticationMethods publickey,keyboard-interactive$/m);
    assert.match(dry.stdout, /^-@include common-auth$/m);
    assert.deepEqual(snapshot(s), before, "dry run: every file byte-identical");

    assert.equal(setupSsh(s, ["--allow-unenrolled"]).status, 0);
    const after = snapshot(s);
    const second = setupSsh(s, ["--allow-unenrolled"]);
    assert.equal(second.status, 0);
    assert.match(second.stdout, /already configured, nothing to change/);
    const afterSecond = snapshot(s);
    assert.deepEqual(afterSecond, after, "the second run changed nothing");

    const rb = runCli(["setup", "ssh", "--rollback", "--root", s.root]);
    assert.equal(rb.status, 0, rb.stderr);
    const restored = snapshot(s);
    for (const [path, content] of Object.entries(before)) assert.equal(restored[path], content, `${path} restored byte for byte`);
    for (const path of Object.keys(restored)) assert.ok(path in before || path.includes(".otpgate-backup-"), `${path} is left over`);
    const none = runCli(["setup", "ssh", "--rollback", "--root", s.root]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /nothing to roll back/);
  });

  test("a configuration that fails sshd -t, or that sshd would not use, is never left in place", (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    writeFileSync(join(s.root, "etc/ssh/sshd_config.d/05-site.conf"), "PasswordAuthentication yes\n");
    let before = configFiles(s);
    const shadowed = setupSsh(s, ["--allow-unenrolled"]);
    assert.equal(shadowed.status, 2);
    assert.match(shadowed.stderr, /every file was restored:\n.*for a connection that matches no Match block.*sshd would use passwordauthentication yes/s);
    assert.deepEqual(configFiles(s), before);

    writeFileSync(join(s.root, "etc/ssh/sshd_config.d/05-site.conf"), "ThisIsNotAnOption yes\n");
    before = configFiles(s);
    const broken = setupSsh(s, ["--allow-unenrolled"]);
    assert.equal(broken.status, 2);
    assert.match(broken.stderr, /sshd -t rejected the new configuration, so every file was restored:.*Bad configuration option/s);
    assert.deepEqual(configFiles(s), before);
    assert.ok(!existsSync(join(s.root, "etc/otpgate/setup-ssh.json")), "no manifest: nothing to roll back");
  });

  test("the lock-out guard refuses when the admin is not enrolled or has no key", (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    const dave = throwawayUser(t);
    const before = snapshot(s);
    const r = setupSsh(s, ["--admin", dave.name]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`it would lock out the admin: ${dave.name} is not enrolled.*otpgate enroll --user ${dave.name}.*has no .*authorized_keys`, "s"));
    assert.deepEqual(snapshot(s), before);
    const nobody = setupSsh(s, []);
    assert.equal(nobody.status, 2);
    assert.match(nobody.stderr, /no admin to protect from a lock-out: run it with sudo \(SUDO_USER\) or pass --admin NAME/);
    runCli(["enroll", "--user", dave.name, "-t", "-d", "-W", "-u", "-q"]);
    s.authorize(dave);
    assert.equal(setupSsh(s, []).status, 2);
    const ok = runCli(["setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--node", process.execPath, "--otpgate", CLI], {
      env: { PATH: "/usr/bin:/bin", SUDO_USER: dave.name },
    });
    assert.equal(ok.status, 0, ok.stderr);
  });
});

describe("otpgate doctor", () => {
  test("a configuration written by setup passes; each breakage is reported with its fix and exit 1", async (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    const erin = throwawayUser(t);
    s.authorize(erin);
    runCli(["enroll", "--user", erin.name, "-t", "-d", "-W", "-u", "-q"]);
    assert.equal(setupSsh(s, ["--admin", erin.name]).status, 0);
    const doctor = () => runCli(["doctor", "--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", erin.name, "--json"]);
    const good = doctor();
    const findings = JSON.parse(good.stdout) as { check: string; severity: string; message: string; fix?: string }[];
    assert.equal(good.status, 0, good.stdout);
    assert.ok(findings.some((f) => f.check === "sshd" && f.severity === "ok"));
    assert.ok(findings.some((f) => f.check === "pam:sshd" && f.severity === "ok"));
    assert.ok(findings.some((f) => f.check === "state-files" && f.severity === "ok"));
    assert.ok(
      findings.some((f) => f.check === "clock"),
      "the clock is always checked",
    );

    const pamPath = join(s.root, "etc/pam.d", s.service);
    const pam = readFileSync(pamPath, "utf8");
    writeFileSync(pamPath, pam.replace("[success=1 ignore=1 default=ignore]", "sufficient"));
    let r = doctor();
    assert.equal(r.status, 1);
    assert.match(r.stdout, /the otpgate line is \\"sufficient\\", so a wrong code does not stop the login/);
    writeFileSync(pamPath, pam.replace(process.execPath, "/opt/nowhere/node"));
    r = doctor();
    assert.equal(r.status, 1);
    assert.match(r.stdout, /\/opt\/nowhere\/node does not exist, so every login fails/);
    writeFileSync(pamPath, pam);
    const { chmodSync } = await import("node:fs");
    chmodSync(join(erin.home, ".google_authenticator"), 0o644);
    r = runCli(["doctor", "--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", erin.name]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, new RegExp(`FAIL  state-files +${erin.name}: .*permissions 0644.*\\n +fix: `));
  });
});

describe("ssh: key + code through pam_radius_auth.so and otpgate radius (no process per login)", () => {
  test("right code in with a real 'Verification code: ' prompt; replayed and wrong out; checker down means no login", { timeout: 120_000 }, async (t: TestContext) => {
    if (!systemReady(t, ["python3", "oathtool"]) || !existsSync("/lib/x86_64-linux-gnu/security/pam_radius_auth.so")) {
      if (process.env.REQUIRE_SYSTEM_TESTS === "1" && !existsSync("/lib/x86_64-linux-gnu/security/pam_radius_auth.so")) throw new Error("libpam-radius-auth is missing (scripts/install-test-deps.sh)");
      return;
    }
    const dir = tempDir(t);
    const s = privateSshd(dir);
    t.after(() => s.cleanup());
    const frank = throwawayUser(t);
    s.authorize(frank);
    runCli(["enroll", "--user", frank.name, "-t", "-d", "-W", "-u", "-q"]);
    const port = 30000 + Math.floor(Math.random() * 20000);
    const r = setupSsh(s, ["--admin", frank.name, "--backend", "radius", "--radius-port", String(port)]);
    assert.equal(r.status, 0, r.stderr);
    const pam = readFileSync(join(s.root, "etc/pam.d", s.service), "utf8");
    assert.match(pam, /^auth +required +pam_radius_auth\.so conf=\S+pam_radius\.conf \[prompt=Verification code\] force_prompt$/m);
    const { statSync } = await import("node:fs");
    assert.equal(statSync(join(s.root, "etc/otpgate/radius.secret")).mode & 0o777, 0o600);
    s.installPam();
    const { spawn } = await import("node:child_process");
    const checker = spawn(process.execPath, [CLI, "radius", "--listen", `127.0.0.1:${port}`, "--secret-file", join(s.root, "etc/otpgate/radius.secret")], { stdio: ["ignore", "ignore", "pipe"] });
    t.after(() => checker.kill("SIGKILL"));
    await new Promise<void>((resolve, reject) => {
      checker.stderr!.on("data", (d: Buffer) => d.toString().includes("listening") && resolve());
      checker.on("exit", () => reject(new Error("otpgate radius exited")));
    });
    await s.start();
    const secret = secretOf(frank.home);
    const code = oathTotp(secret);
    const ok = s.login(frank.name, code);
    assert.equal(ok.ok, true, JSON.stringify(ok) + s.log().slice(-2000));
    assert.deepEqual(ok.prompts[0], ["Verification code: "]);
    assert.equal(s.login(frank.name, code).ok, false, "replayed");
    assert.equal(s.login(frank.name, "000000").ok, false, "wrong");
    checker.kill("SIGTERM");
    await new Promise((r2) => checker.on("exit", r2));
    assert.equal(s.login(frank.name, oathTotp(secret, 1)).ok, false, "no checker, no login");
  });
});
