// Attacks on what `otpgate setup` writes (issue 8): each test drives the real components (pamtester,
// a private OpenSSH sshd with Debian's defaults, pam_radius_auth, systemd-analyze) against the files
// setup produced under --root, and checks that the hole is closed and that a refusal changed nothing.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { privateSshd, type PrivateSshd } from "../helpers/sshd.js";
import { CLI, oathTotp, ptyDrive, runCli, sh, systemReady, tempDir, throwawayUser, uniqueName } from "../helpers/system.js";
import { parseExecStart } from "../helpers/systemd-exec.js";

const RADIUS_SO = "/lib/x86_64-linux-gnu/security/pam_radius_auth.so";
const secretOf = (home: string, file = ".google_authenticator") => readFileSync(join(home, file), "latin1").split("\n")[0]!;
const enroll = (name: string, extra: string[] = []) => {
  const r = runCli(["enroll", "--user", name, "-t", "-d", "-W", "-u", "-q", ...extra]);
  assert.equal(r.status, 0, r.stderr);
};

/** pamtester with PAM environment variables (-E) and items (-I). */
function pamtest(service: string, user: string, entry: string, env: string[] = [], items: string[] = []): { ok: boolean; out: string } {
  const argv = [...env.flatMap((e) => ["-E", e]), ...items.flatMap((i) => ["-I", i]), service, user, "authenticate"];
  const r = spawnSync("pamtester", argv, { input: entry + "\n", encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, timeout: 20_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** What sshd puts into the PAM environment after a successful publickey step. */
const AFTER_KEY = "SSH_AUTH_INFO_0=publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttackerDoesNotHaveThisKeyxxxxxxxxxxxxxxxxx";

/** Every regular file under dir (recursively) except otpgate's backups, with its content. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !e.name.includes(".otpgate-backup-")) files[p] = readFileSync(p, "latin1"); // backups are kept on purpose
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

/** A PAM file from --root installed under its (unique) service name in /etc/pam.d, removed afterwards. */
function install(t: TestContext, from: string, service: string): void {
  const to = join("/etc/pam.d", service);
  copyFileSync(from, to);
  t.after(() => existsSync(to) && unlinkSync(to));
}

function setupSsh(s: PrivateSshd, extra: string[], input = "") {
  return runCli(["setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--node", process.execPath, "--otpgate", CLI, ...extra], { input });
}

function rstudioRoot(t: TestContext): { root: string; service: string; run(extra: string[]): ReturnType<typeof runCli> } {
  const root = join(tempDir(t), "root");
  mkdirSync(join(root, "etc/pam.d"), { recursive: true });
  mkdirSync(join(root, "etc/rstudio"), { recursive: true });
  writeFileSync(join(root, "etc/rstudio/rserver.conf"), "www-port=8787\n");
  writeFileSync(join(root, "etc/pam.d/rstudio-x"), "@include common-auth\n@include common-account\n@include common-session\n");
  const service = uniqueName("otpgate-rs");
  copyFileSync(join(root, "etc/pam.d/rstudio-x"), join(root, "etc/pam.d", service));
  rmSync(join(root, "etc/pam.d/rstudio-x"));
  return { root, service, run: (extra) => runCli(["setup", "rstudio", "--root", root, "--service", service, "--node", process.execPath, "--otpgate", CLI, ...extra]) };
}

describe("setup never writes a stack where 'not enrolled' means 'no authentication' (#1)", () => {
  test("rstudio --nullok with factors code: refused, nothing written; an unenrolled user never gets in with any password", (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    const r = rstudioRoot(t);
    const admin = throwawayUser(t);
    enroll(admin.name);
    const stranger = throwawayUser(t);
    const before = snapshot(r.root);
    const out = r.run(["--admin", admin.name, "--nullok"]);
    // The attack, whatever setup did: the stack it left behind, under a unique service name.
    install(t, join(r.root, "etc/pam.d", r.service), r.service);
    assert.equal(pamtest(r.service, stranger.name, "any password at all").ok, false, "an unenrolled user got in with any password");
    assert.equal(out.status, 2, out.stdout + out.stderr);
    assert.match(out.stderr, /--nullok.*rstudio.*factors code/s);
    assert.deepEqual(snapshot(r.root), before, "a refusal changes nothing");
  });
});

describe("setup ssh: the code never becomes an SSH password (#2, #3)", () => {
  test("before the reload the running sshd's password method with the right code is refused; after it only key + code works", { timeout: 180_000 }, async (t) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const alice = throwawayUser(t);
    s.authorize(alice);
    enroll(alice.name);
    spawnSync("chpasswd", { input: `${alice.name}:Corr3ct-Horse\n` });
    await s.start(); // Debian's defaults: PasswordAuthentication yes, keyboard-interactive off
    assert.equal(s.login(alice.name, "Corr3ct-Horse", { password: true, noKey: true }).ok, true, "precondition: passwords work before setup");

    const r = setupSsh(s, ["--admin", alice.name]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    s.installPam();
    const secret = secretOf(alice.home);
    assert.equal(s.login(alice.name, oathTotp(secret), { password: true, noKey: true }).ok, false, "before the reload: the code alone is a password");
    assert.equal(s.login(alice.name, "Corr3ct-Horse", { password: true, noKey: true }).ok, false, "before the reload: the old password still works");
    assert.match(r.stdout, /live now/i);
    assert.match(r.stdout, /after sshd is reloaded/i);
    assert.match(readFileSync(join(s.root, "etc/pam.d", s.service), "utf8"), / pam require_publickey\b/);

    await s.reload();
    assert.equal(s.login(alice.name, oathTotp(secret, 1), { password: true, noKey: true }).ok, false, "after the reload: password method");
    assert.equal(s.login(alice.name, oathTotp(secret, 1), { noKey: true }).ok, false, "after the reload: keyboard-interactive without the key");
    const ok = s.login(alice.name, oathTotp(secret, 1));
    assert.equal(ok.ok, true, JSON.stringify(ok) + s.log().slice(-1500));
  });

  test("--reload reloads the running sshd itself (by its PidFile) and says so", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const bob = throwawayUser(t);
    s.authorize(bob);
    enroll(bob.name);
    spawnSync("chpasswd", { input: `${bob.name}:Corr3ct-Horse\n` });
    await s.start();
    const r = setupSsh(s, ["--admin", bob.name, "--reload"]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /reloaded sshd \(pid \d+\)/);
    await new Promise((res) => setTimeout(res, 800));
    s.installPam();
    assert.equal(s.login(bob.name, "Corr3ct-Horse", { password: true, noKey: true }).ok, false, "passwords are off after --reload");
    const ok = s.login(bob.name, oathTotp(secretOf(bob.home)));
    assert.equal(ok.ok, true, JSON.stringify(ok) + s.log().slice(-1500));
  });

  test("on a terminal: the code for --test-login is read hidden, and setup asks before it reloads sshd", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, ["python3", "pamtester", "oathtool"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const hal = throwawayUser(t);
    s.authorize(hal);
    enroll(hal.name);
    await s.start();
    const argv = [process.execPath, CLI, "setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--node", process.execPath, "--otpgate", CLI, "--admin", hal.name, "--test-login"];
    const code = oathTotp(secretOf(hal.home));
    const run = ptyDrive(
      [
        ["Test login: type a current code", code],
        ["Reload sshd now\\?.*\\(y/n\\) ", "y"],
      ],
      argv,
    );
    assert.equal(run.failedStep, null, run.output);
    assert.equal(run.exit, 0, run.output);
    assert.doesNotMatch(run.output, new RegExp(code), "the code is not echoed");
    assert.match(run.output, /test login .* succeeded/);
    assert.match(run.output, /reloaded sshd \(pid \d+\)/);
  });

  test("--test-login proves the new stack with a real code for the admin before success; a wrong code restores every file", { timeout: 120_000 }, (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const carol = throwawayUser(t);
    s.authorize(carol);
    enroll(carol.name);
    const before = snapshot(join(s.root, "etc"));
    const bad = setupSsh(s, ["--admin", carol.name, "--test-login"], "000000\n");
    assert.equal(bad.status, 2, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /test login.*failed.*every file was restored/s);
    assert.deepEqual(snapshot(join(s.root, "etc")), before);
    const good = setupSsh(s, ["--admin", carol.name, "--test-login"], oathTotp(secretOf(carol.home)) + "\n");
    assert.equal(good.status, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /test login .*succeeded/);
  });

  for (const kind of ["Address", "Group"] as const) {
    test(`a Match ${kind} block that turns passwords back on is found (sshd -T for a connection matching it): setup refuses and restores, doctor fails`, { timeout: 120_000 }, (t) => {
      if (!systemReady(t, [])) return;
      const s = privateSshd(tempDir(t));
      t.after(() => s.cleanup());
      const dave = throwawayUser(t);
      s.authorize(dave);
      enroll(dave.name);
      let criterion = "Address 10.20.0.0/16";
      if (kind === "Group") {
        const group = uniqueName("otpg").slice(0, 14);
        sh("groupadd", [group]);
        t.after(() => spawnSync("groupdel", [group]));
        const member = throwawayUser(t);
        sh("usermod", ["-a", "-G", group, member.name]);
        criterion = `Group ${group}`;
      }
      const config = join(s.root, "etc/ssh/sshd_config");
      const site = `\nMatch ${criterion}\n    PasswordAuthentication yes\n    AuthenticationMethods password\n`;
      writeFileSync(config, readFileSync(config, "utf8") + site);
      const before = snapshot(join(s.root, "etc"));
      const r = setupSsh(s, ["--admin", dave.name]);
      assert.equal(r.status, 2, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`Match ${criterion.replace(/[./]/g, "\\$&")}`));
      assert.match(r.stderr, /passwordauthentication yes/);
      assert.match(r.stderr, /every file was restored/);
      assert.deepEqual(snapshot(join(s.root, "etc")), before, "refused: every file as before");

      // doctor: a configuration that passed setup, with the Match block added afterwards
      writeFileSync(config, readFileSync(config, "utf8").replace(site, ""));
      const ok = setupSsh(s, ["--admin", dave.name]);
      assert.equal(ok.status, 0, ok.stderr);
      const doctor = () => runCli(["doctor", "--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", dave.name, "--json"]);
      assert.equal(doctor().status, 0, doctor().stdout);
      writeFileSync(config, readFileSync(config, "utf8") + site);
      const d = doctor();
      assert.equal(d.status, 1, d.stdout);
      const findings = JSON.parse(d.stdout) as { check: string; severity: string; message: string }[];
      assert.ok(
        findings.some((f) => f.check === "sshd" && f.severity === "fail" && f.message.includes(`Match ${criterion}`)),
        d.stdout,
      );
    });
  }

  test("radius backend: before pam_radius_auth a check that sshd reports a completed publickey step (no node started)", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, ["python3", "oathtool"]) || !existsSync(RADIUS_SO)) {
      if (process.env.REQUIRE_SYSTEM_TESTS === "1" && !existsSync(RADIUS_SO)) throw new Error("libpam-radius-auth is missing (scripts/install-test-deps.sh)");
      return;
    }
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const erin = throwawayUser(t);
    s.authorize(erin);
    enroll(erin.name);
    const port = 30000 + Math.floor(Math.random() * 20000);
    await s.start();
    const r = setupSsh(s, ["--admin", erin.name, "--backend", "radius", "--radius-port", String(port)]);
    assert.equal(r.status, 0, r.stderr);
    s.installPam();
    const checker = spawn(process.execPath, [CLI, "radius", "--listen", `127.0.0.1:${port}`, "--secret-file", join(s.root, "etc/otpgate/radius.secret")], { stdio: ["ignore", "ignore", "pipe"] });
    t.after(() => checker.kill("SIGKILL"));
    await new Promise<void>((resolve, reject) => {
      checker.stderr!.on("data", (d: Buffer) => d.toString().includes("listening") && resolve());
      checker.on("exit", () => reject(new Error("otpgate radius exited")));
    });
    const secret = secretOf(erin.home);
    assert.equal(s.login(erin.name, oathTotp(secret), { password: true, noKey: true }).ok, false, "before the reload: the code as an SSH password");
    const pam = readFileSync(join(s.root, "etc/pam.d", s.service), "utf8");
    assert.match(pam, /^auth +requisite +pam_exec\.so quiet quiet_log \/bin\/sh -c \[.*SSH_AUTH_INFO_0.*\]$/m);
    await s.reload();
    const ok = s.login(erin.name, oathTotp(secret, 1));
    assert.equal(ok.ok, true, JSON.stringify(ok) + s.log().slice(-1500));
    assert.deepEqual(ok.prompts[0], ["Verification code: "]);
  });
});

describe("the lock-out guard and the PAM lines (#4, #7)", () => {
  test("key+password+code with an admin whose password is locked (! in shadow): refused, nothing changed", (t) => {
    if (!systemReady(t, [])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const frank = throwawayUser(t); // useradd leaves '!' in /etc/shadow, like a cloud image's admin
    s.authorize(frank);
    enroll(frank.name);
    const before = snapshot(join(s.root, "etc"));
    const r = setupSsh(s, ["--admin", frank.name, "--factors", "key+password+code"]);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${frank.name}'s password is locked`));
    assert.deepEqual(snapshot(join(s.root, "etc")), before);
    spawnSync("chpasswd", { input: `${frank.name}:S0me-Passw0rd\n` });
    assert.equal(setupSsh(s, ["--admin", frank.name, "--factors", "key+password+code"]).status, 0, "with a usable password it goes through");
  });

  test("a --secret with spaces reaches otpgate pam as one argument (PAM's [ ] quoting); '#' is refused", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const gina = throwawayUser(t);
    const top = tempDir(t);
    chmodSync(top, 0o755);
    const dir = join(top, "state dir");
    mkdirSync(dir);
    sh("chown", [gina.name, dir]);
    s.authorize(gina);
    enroll(gina.name, ["-s", join(dir, gina.name)]);
    const r = setupSsh(s, ["--admin", gina.name, "--secret", `${dir}/\${USER}`]);
    assert.equal(r.status, 0, r.stderr);
    const pamFile = join(s.root, "etc/pam.d", s.service);
    install(t, pamFile, s.service);
    const code = oathTotp(readFileSync(join(dir, gina.name), "latin1").split("\n")[0]!);
    const res = pamtest(s.service, gina.name, code, [AFTER_KEY]);
    assert.equal(res.ok, true, res.out);
    assert.match(readFileSync(pamFile, "utf8"), /\[secret=[^\]]*state dir\/\$\{USER\}\]/);

    const before = snapshot(join(s.root, "etc"));
    const hash = setupSsh(s, ["--admin", gina.name, "--secret", `${dir}/#x`]);
    assert.equal(hash.status, 2);
    assert.match(hash.stderr, /--secret.*cannot be written into a PAM line/s);
    assert.deepEqual(snapshot(join(s.root, "etc")), before);
  });

  test("noskewadj is written by default; --skew-adjust leaves it out", (t) => {
    if (!systemReady(t, [])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    assert.equal(setupSsh(s, ["--allow-unenrolled"]).status, 0);
    const pamFile = join(s.root, "etc/pam.d", s.service);
    assert.match(readFileSync(pamFile, "utf8"), / pam require_publickey noskewadj$/m);
    assert.equal(setupSsh(s, ["--allow-unenrolled", "--skew-adjust"]).status, 0);
    assert.match(readFileSync(pamFile, "utf8"), / pam require_publickey$/m);
  });
});

describe("the PAM environment does not steer the root node process (#6)", () => {
  test("NODE_OPTIONS=--require=x.js in the PAM environment (pamtester -E) does not run x.js as root: ssh and rstudio lines, rstudio helper", (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const marker = join(dir, "ran-as-root");
    const evil = join(dir, "x.js");
    writeFileSync(evil, `require("fs").writeFileSync(${JSON.stringify(marker)}, String(process.getuid()));\n`, { mode: 0o644 });
    const env = [`NODE_OPTIONS=--require=${evil}`, `NODE_PATH=${dir}`];

    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const user = throwawayUser(t);
    assert.equal(setupSsh(s, ["--allow-unenrolled"]).status, 0);
    install(t, join(s.root, "etc/pam.d", s.service), s.service);
    pamtest(s.service, user.name, "123456", [...env, AFTER_KEY]);
    assert.equal(existsSync(marker), false, "ssh: NODE_OPTIONS from the PAM environment ran code as root");

    const r = rstudioRoot(t);
    assert.equal(r.run(["--allow-unenrolled"]).status, 0);
    install(t, join(r.root, "etc/pam.d", r.service), r.service);
    pamtest(r.service, user.name, "123456", env);
    assert.equal(existsSync(marker), false, "rstudio: NODE_OPTIONS from the PAM environment ran code as root");

    const fakeRserverPam = join(dir, "rserver-pam");
    writeFileSync(fakeRserverPam, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const p = r.run(["--allow-unenrolled", "--factors", "password+code", "--rserver-pam", fakeRserverPam]);
    assert.equal(p.status, 0, p.stderr);
    const helper = join(r.root, "usr/local/lib/otpgate/rserver-pam-otpgate");
    spawnSync(helper, [user.name, "rstudio", "1"], { input: "pw123456", env: { NODE_OPTIONS: `--require=${evil}`, PATH: "/usr/bin:/bin" }, timeout: 20_000 });
    assert.equal(existsSync(marker), false, "rstudio helper: NODE_OPTIONS from rserver's environment ran code as root");
  });
});

describe("the otpgate-server systemd unit (setup ssh --backend radius) (#5, #6)", () => {
  test("systemd-analyze verify accepts it and the argv systemd would pass keeps ${USER} and % literally", (t) => {
    if (!systemReady(t, []) || !existsSync("/usr/bin/systemd-analyze")) {
      if (process.env.REQUIRE_SYSTEM_TESTS === "1") throw new Error("systemd-analyze is missing (scripts/install-test-deps.sh)");
      return;
    }
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const state = "/var/lib/otpgate/%i-${USER}";
    const r = setupSsh(s, ["--allow-unenrolled", "--backend", "radius", "--secret", state]);
    assert.equal(r.status, 0, r.stderr);
    const unitPath = join(s.root, "etc/systemd/system/otpgate-server.service");
    const unit = readFileSync(unitPath, "utf8");
    const verify = spawnSync("systemd-analyze", ["verify", "--man=no", unitPath], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", SYSTEMD_LOG_LEVEL: "warning" } });
    const complaints = `${verify.stdout}${verify.stderr}`.split("\n").filter((l) => l.includes("otpgate-server.service"));
    assert.deepEqual(complaints, [], `${verify.stdout}${verify.stderr}`);
    assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
    const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "";
    const argv = parseExecStart(exec, { USER: "root" });
    assert.deepEqual(argv.slice(argv.indexOf("--state"), argv.indexOf("--state") + 2), ["--state", state]);
    assert.ok(argv.includes("--noskewadj"), argv.join(" "));
    assert.equal(argv[0], process.execPath);
    assert.equal(argv[2], "server", `the unit runs otpgate server: ${argv.join(" ")}`);
    assert.ok(!existsSync(join(s.root, "etc/systemd/system/otpgate-radius.service")), "no otpgate-radius unit any more (older installs wrote it)");
    assert.match(unit, /^UnsetEnvironment=.*\bNODE_OPTIONS\b.*\bLD_PRELOAD\b/m);
  });
});

describe("rollback keeps admin edits made after setup (#8)", () => {
  test("a file changed since setup: --rollback refuses and names it, --force restores", (t) => {
    if (!systemReady(t, [])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    assert.equal(setupSsh(s, ["--allow-unenrolled"]).status, 0);
    const pamFile = join(s.root, "etc/pam.d", s.service);
    writeFileSync(pamFile, readFileSync(pamFile, "utf8") + "# the admin's own edit\n");
    const edited = snapshot(join(s.root, "etc"));
    const rb = runCli(["setup", "ssh", "--rollback", "--root", s.root]);
    assert.equal(rb.status, 2, rb.stdout + rb.stderr);
    assert.match(rb.stderr, new RegExp(`${pamFile.replace(/[./]/g, "\\$&")} changed since otpgate setup wrote it.*--force`, "s"));
    assert.deepEqual(snapshot(join(s.root, "etc")), edited, "refused: nothing restored");
    const forced = runCli(["setup", "ssh", "--rollback", "--force", "--root", s.root]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.doesNotMatch(readFileSync(pamFile, "utf8"), /otpgate/);
  });
});
