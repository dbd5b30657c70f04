// Security checks of doctor and setup, and what otpgate refuses as root: an installation a user
// can change (install trust), PAM stacks where nothing authenticates, key factors without the
// publickey guard, pam_env reading the user's variables, an sshd that has not reloaded its
// configuration, node-steering variables in root's environment, terminal escapes from users'
// files, and an enrollment whose QR file cannot be written.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { privateSshd, type PrivateSshd } from "../helpers/sshd.js";
import { CLI, enrolledUser, oathTotp, ROOT, TRUSTED_BASE, runCli, syslogListener, systemReady, tempDir, throwawayUser, uniqueName, zbarimg } from "../helpers/system.js";

interface Finding {
  check: string;
  severity: string;
  message: string;
  fix?: string;
}

/** A copy of dist/ under a root-owned, root-only directory (the checkout's build/), removed afterwards. */
function copyOfDist(t: TestContext): { pkg: string; launcher: string } {
  const base = mkdtempSync(join(TRUSTED_BASE, "trust-"));
  chmodSync(base, 0o755);
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const pkg = join(base, "otpgate");
  cpSync(join(ROOT, "dist"), join(pkg, "dist"), { recursive: true });
  return { pkg, launcher: join(pkg, "dist/otpgate.cjs") };
}

function doctorJson(args: string[], cli = CLI): { status: number | null; findings: Finding[]; stdout: string } {
  const r = spawnSync(process.execPath, [cli, "doctor", "--json", ...args], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" }, timeout: 60_000 });
  return { status: r.status, findings: r.stdout ? (JSON.parse(r.stdout) as Finding[]) : [], stdout: r.stdout + r.stderr };
}

/** otpgate's lines as setup writes them: node runs through env without the variables that steer it. */
const OTP_LINES = (launcher: string, options = "", env = "/usr/bin/env -u NODE_OPTIONS -u NODE_PATH ") => [
  `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${env}${process.execPath} ${launcher} pam${options}`,
  "auth requisite pam_deny.so",
  "auth required pam_permit.so",
];

/** A --root with sshd_config (and the setup drop-in) and a crafted PAM file for SERVICE. */
function craftedRoot(
  t: TestContext,
  pamLines: string[],
  dropIn = "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\nPasswordAuthentication no\nUsePAM yes\n",
): PrivateSshd {
  const s = privateSshd(tempDir(t));
  t.after(() => s.cleanup());
  writeFileSync(join(s.root, "etc/ssh/sshd_config.d/10-otpgate.conf"), dropIn);
  writeFileSync(join(s.root, "etc/pam.d", s.service), pamLines.join("\n") + "\n");
  return s;
}

const doctorOn = (s: PrivateSshd, extra: string[] = []) =>
  doctorJson(["--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--rstudio-service", "none-" + s.service, "--user", "root", ...extra]);

describe("install trust: nothing root runs may be changeable by a user", () => {
  test("setup refuses an otpgate whose dist/ a user owns; doctor flags it, run from there or named in the PAM line", async (t) => {
    if (!systemReady(t, [])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const erin = enrolledUser(t).user;
    s.authorize(erin);
    const { pkg, launcher } = copyOfDist(t);
    // `npm install -g .` from erin's checkout: the files are root's, the directory is erin's
    chownSync(join(pkg, "dist"), erin.uid, erin.gid);
    const before = readFileSync(join(s.root, "etc/pam.d", s.service), "utf8");
    const r = spawnSync(process.execPath, [launcher, "setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--admin", erin.name], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin" },
    });
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${join(pkg, "dist")} is owned by uid ${erin.uid}, not root`));
    assert.equal(readFileSync(join(s.root, "etc/pam.d", s.service), "utf8"), before, "nothing written");
    assert.equal(existsSync(join(s.root, "etc/ssh/sshd_config.d/10-otpgate.conf")), false);
    // --otpgate naming it is refused the same way
    const named = runCli(["setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--admin", erin.name, "--otpgate", launcher]);
    assert.equal(named.status, 2, named.stdout + named.stderr);

    // doctor run from that copy flags its own installation
    const self = doctorJson(["--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", erin.name], launcher);
    assert.equal(self.status, 1, self.stdout);
    const own = self.findings.find((f) => f.check === "install" && f.severity === "fail" && f.message.includes(join(pkg, "dist")));
    assert.ok(own, self.stdout);
    assert.match(own.fix!, /do not repair it in place.*npm pack && npm install -g \.\/otpgate-\*\.tgz.*remove the old tree/);
    // a trusted doctor flags the copy when the PAM line runs it
    writeFileSync(join(s.root, "etc/pam.d", s.service), OTP_LINES(launcher, " require_publickey").join("\n") + "\n");
    const other = doctorJson(["--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", erin.name]);
    assert.equal(other.status, 1, other.stdout);
    assert.ok(
      other.findings.some((f) => f.check === "pam:sshd" && f.severity === "fail" && f.message.includes(`${join(pkg, "dist")} is owned by uid ${erin.uid}`)),
      other.stdout,
    );
    // and the RADIUS checker's unit, which systemd runs as root
    mkdirSync(join(s.root, "etc/systemd/system"), { recursive: true });
    writeFileSync(join(s.root, "etc/systemd/system/otpgate-radius.service"), `[Service]\nExecStart=${process.execPath} ${launcher} radius --listen 127.0.0.1:18120\n`);
    const unit = doctorJson(["--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", erin.name]);
    assert.ok(
      unit.findings.some((f) => f.check === "radius" && f.severity === "fail" && f.message.includes(`${join(pkg, "dist")} is owned by uid ${erin.uid}`)),
      unit.stdout,
    );
    // after chown root: clean
    chownSync(join(pkg, "dist"), 0, 0);
    const fixed = doctorJson(["--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--user", erin.name], launcher);
    assert.ok(!fixed.findings.some((f) => f.severity === "fail" && /owned by|writable/.test(f.message)), fixed.stdout);
    assert.ok(
      fixed.findings.some((f) => f.check === "radius" && f.severity === "ok"),
      fixed.stdout,
    );
  });
});

describe("doctor: PAM stacks and sshd", () => {
  test("nullok where nothing else authenticates is critical; common-auth, password or require_publickey make it safe", (t) => {
    if (!systemReady(t, [])) return;
    const s = craftedRoot(t, [...OTP_LINES(CLI, " nullok"), "#otpgate-disabled# @include common-auth"]);
    const rs = uniqueName("otpgate-rs");
    const rsPath = join(s.root, "etc/pam.d", rs);
    const rstudio = (lines: string[]) => {
      writeFileSync(rsPath, lines.join("\n") + "\n");
      return doctorJson(["--root", s.root, "--ssh-service", s.service, "--sshd", s.sshd, "--rstudio-service", rs, "--user", "root"]);
    };
    const nullokFail = (r: ReturnType<typeof doctorJson>, check: string) => r.findings.find((f) => f.check === check && f.severity === "fail" && /nullok/.test(f.message));
    let r = rstudio([...OTP_LINES(CLI, " nullok"), "#otpgate-disabled# @include common-auth", "account include common-account"]);
    assert.equal(r.status, 1, r.stdout);
    const f = nullokFail(r, "pam:rstudio");
    assert.ok(f, r.stdout);
    assert.match(f.message, /CRITICAL.*not enrolled.*without any authentication/);
    assert.ok(nullokFail(r, "pam:sshd"), "the sshd stack too: nullok without require_publickey");
    assert.equal(nullokFail(rstudio(["@include common-auth", ...OTP_LINES(CLI, " nullok")]), "pam:rstudio"), undefined, "the password stack still runs");
    assert.equal(nullokFail(rstudio([...OTP_LINES(CLI, " password nullok")]), "pam:rstudio"), undefined, "the password is checked");
    assert.equal(nullokFail(rstudio([...OTP_LINES(CLI)]), "pam:rstudio"), undefined, "no nullok");
    // a module that returns success at once before otpgate's line skips the code altogether
    r = rstudio(["auth sufficient pam_unix.so", ...OTP_LINES(CLI)]);
    assert.ok(
      r.findings.some((x) => x.check === "pam:rstudio" && x.severity === "fail" && /auth sufficient pam_unix\.so.*the code is never asked/.test(x.message)),
      r.stdout,
    );
    writeFileSync(join(s.root, "etc/pam.d", s.service), [...OTP_LINES(CLI, " require_publickey nullok"), "#otpgate-disabled# @include common-auth"].join("\n") + "\n");
    assert.equal(nullokFail(doctorOn(s), "pam:sshd"), undefined, "sshd checked the key first");
  });

  test("key factors without require_publickey are flagged: the code alone must never be a login", (t) => {
    if (!systemReady(t, [])) return;
    const s = craftedRoot(t, [...OTP_LINES(CLI), "#otpgate-disabled# @include common-auth"]);
    const r = doctorOn(s);
    assert.equal(r.status, 1, r.stdout);
    const f = r.findings.find((x) => x.check === "pam:sshd" && x.severity === "fail" && /require_publickey/.test(x.message));
    assert.ok(f, r.stdout);
    assert.match(f.fix!, /otpgate setup ssh|require_publickey/);
    writeFileSync(join(s.root, "etc/pam.d", s.service), [...OTP_LINES(CLI, " require_publickey"), "#otpgate-disabled# @include common-auth"].join("\n") + "\n");
    const ok = doctorOn(s);
    assert.ok(!ok.findings.some((x) => /require_publickey/.test(x.message) && x.severity !== "ok"), ok.stdout);
    assert.ok(
      ok.findings.some((x) => x.check === "pam:sshd" && x.severity === "ok"),
      ok.stdout,
    );
    // without env -u, the PAM environment reaches node: a warning (otpgate itself refuses then)
    writeFileSync(join(s.root, "etc/pam.d", s.service), [...OTP_LINES(CLI, " require_publickey", ""), "#otpgate-disabled# @include common-auth"].join("\n") + "\n");
    const bare = doctorOn(s);
    assert.ok(
      bare.findings.some((x) => x.check === "pam:sshd" && x.severity === "warn" && /NODE_OPTIONS/.test(x.message)),
      bare.stdout,
    );
  });

  test("pam_env with user_readenv=1 in the auth phase before otpgate is flagged; in the session phase it is not", (t) => {
    if (!systemReady(t, [])) return;
    const readenv = "auth required pam_env.so user_readenv=1 envfile=/etc/default/locale";
    const s = craftedRoot(t, [readenv, ...OTP_LINES(CLI, " require_publickey"), "#otpgate-disabled# @include common-auth"]);
    const bad = doctorOn(s);
    assert.equal(bad.status, 1, bad.stdout);
    const f = bad.findings.find((x) => /user_readenv/.test(x.message) && x.severity === "fail");
    assert.ok(f, bad.stdout);
    assert.match(f.message, /~\/\.pam_environment|NODE_OPTIONS/);
    writeFileSync(
      join(s.root, "etc/pam.d", s.service),
      [...OTP_LINES(CLI, " require_publickey"), "#otpgate-disabled# @include common-auth", "session required pam_env.so user_readenv=1 envfile=/etc/default/locale"].join("\n") + "\n",
    );
    assert.ok(!doctorOn(s).findings.some((x) => /user_readenv/.test(x.message)));
    // through an included file
    const inc = uniqueName("otpgate-inc");
    writeFileSync(join(s.root, "etc/pam.d", inc), readenv + "\n");
    writeFileSync(join(s.root, "etc/pam.d", s.service), [`@include ${inc}`, ...OTP_LINES(CLI, " require_publickey")].join("\n") + "\n");
    assert.ok(doctorOn(s).findings.some((x) => /user_readenv/.test(x.message) && x.severity === "fail"));
  });

  test("an sshd running since before its configuration changed is flagged until it reloads", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const s = craftedRoot(t, [...OTP_LINES(CLI, " require_publickey"), "#otpgate-disabled# @include common-auth"]);
    await s.start();
    const stale = (r: ReturnType<typeof doctorJson>) => r.findings.find((x) => x.check === "sshd" && x.severity === "warn" && /reload/.test(x.message));
    assert.equal(stale(doctorOn(s)), undefined, doctorOn(s).stdout);
    const later = Date.now() / 1000 + 5;
    utimesSync(join(s.root, "etc/ssh/sshd_config.d/10-otpgate.conf"), later, later);
    const r = doctorOn(s);
    const f = stale(r);
    assert.ok(f, r.stdout);
    assert.match(f.message, /10-otpgate\.conf/);
    assert.match(f.fix!, /systemctl reload ssh|kill -HUP/);
    await new Promise((res) => setTimeout(res, 5200));
    await s.reload();
    assert.equal(stale(doctorOn(s)), undefined, "reloaded: no warning");
  });
});

describe("terminal escapes from users' files", () => {
  test("status, doctor and verify print ESC and CR from a state file and from file names as visible escapes (text and JSON)", (t) => {
    if (!systemReady(t, [])) return;
    const { user } = enrolledUser(t);
    const file = join(user.home, ".google_authenticator");
    const text = readFileSync(file, "latin1");
    chmodSync(file, 0o600);
    writeFileSync(file, text.replace(/^" WINDOW_SIZE.*$/m, "").replace('" TOTP_AUTH', '" WINDOW_SIZE 3\x1b[2J\rX\n" TOTP_AUTH'), "latin1");
    chmodSync(file, 0o400);
    // (\r ends a line in the state file, so it can only reach the output through names)
    const evil = join(user.home, "x\x1b[2J\ry");
    mkdirSync(evil);
    cpSync(file, join(evil, "ga"));
    chownSync(evil, user.uid, user.gid);
    chownSync(join(evil, "ga"), user.uid, user.gid);
    const outputs = [
      runCli(["status", "--user", user.name]),
      runCli(["status", "--user", user.name, "--json"]),
      runCli(["status", "--user", user.name, "-s", join(evil, "ga")]),
      runCli(["status", "--user", user.name, "-s", join(evil, "ga"), "--json"]),
      runCli(["status", "--all"]),
      runCli(["status", "--all", "--json"]),
      runCli(["doctor", "--user", user.name]),
      runCli(["doctor", "--user", user.name, "--json"]),
      runCli(["verify", "--user", user.name, "000000"]),
      runCli(["verify", "--user", user.name, "--json", "000000"]),
    ];
    for (const r of outputs) {
      const all = r.stdout + r.stderr;
      assert.doesNotMatch(all, /[\x1b\r\x9b]/, JSON.stringify(all));
    }
    assert.match(outputs[0]!.stdout, /WINDOW_SIZE must be a whole number from 1 to \d+, not "3\\x1b\[2J"/);
    assert.match(outputs[2]!.stdout, /x\\x1b\[2J\\ry\/ga/);
    const json = JSON.parse(outputs[3]!.stdout) as { file: string; problems: string[] };
    assert.equal(json.file, join(evil, "ga"), "JSON carries the same value, escaped on the wire");
    assert.match(outputs[6]!.stdout, /\\x1b\[2J/);
    assert.match(outputs[8]!.stderr, /\\x1b\[2J/, "verify quotes the bad value, escaped");
  });
});

describe("root refuses an environment that steers node", () => {
  test("pam, rstudio-helper and radius as root exit 2 with one log line when NODE_OPTIONS, NODE_PATH or LD_PRELOAD is set", { timeout: 60_000 }, (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const log = syslogListener(t);
    // emergency codes: each attempt has a fresh one that the old code would have accepted
    const scratch = readFileSync(join(user.home, ".google_authenticator"), "latin1")
      .split("\n")
      .filter((l) => /^[0-9]{8}$/.test(l));
    assert.ok(scratch.length >= 4);
    const pam = (env: Record<string, string>, code = scratch.pop()!) =>
      spawnSync(process.execPath, [CLI, "pam", `log_socket=${log.socket}`], {
        input: code,
        encoding: "utf8",
        env: { PAM_USER: user.name, PAM_SERVICE: "sshd", PAM_TYPE: "auth", ...env },
        timeout: 20_000,
      });
    const accepted = pam({}, oathTotp(secret));
    assert.equal(accepted.status, 0, "the right code, clean environment: in");
    const steering: Record<string, string>[] = [{ NODE_PATH: "/tmp" }, { NODE_OPTIONS: "--no-warnings" }, { LD_PRELOAD: "/nonexistent-otpgate.so" }];
    for (const env of steering) {
      const r = pam(env);
      assert.equal(r.status, 2, `${JSON.stringify(env)}: ${r.stderr}`);
    }
    const lines = log.lines().filter((l) => /refus/.test(l));
    assert.equal(lines.length, 3, lines.join("\n"));
    assert.match(lines[0]!, /NODE_PATH/);
    assert.doesNotMatch(lines.join("\n"), /\/tmp|--no-warnings/, "names only, never the values");
    const dir = tempDir(t);
    const secretFile = join(dir, "radius.secret");
    writeFileSync(secretFile, "s3cret-otpgate-test\n", { mode: 0o600 });
    const port = String(30000 + Math.floor(Math.random() * 20000));
    for (const args of [["rstudio-helper"], ["radius", "--listen", `127.0.0.1:${port}`, "--secret-file", secretFile]]) {
      const r = spawnSync(process.execPath, [CLI, ...args], { input: "", encoding: "utf8", env: { PATH: "/usr/bin:/bin", NODE_OPTIONS: "--no-warnings" }, timeout: 5000 });
      assert.equal(r.status, 2, `${args[0]}: ${r.status} ${r.stderr}`);
      assert.match(r.stderr, /refus.*NODE_OPTIONS/);
    }
    // other commands, and anyone who is not root, are not affected
    assert.equal(runCli(["--version"], { env: { PATH: "/usr/bin:/bin", NODE_OPTIONS: "--no-warnings" } }).status, 0);
  });
});

describe("enroll --qr-png: every output is checked before the state file is written", () => {
  test("a QR file that cannot be written leaves no state file; root's own directory takes the PNG (written by root)", (t) => {
    if (!systemReady(t, ["zbarimg"])) return;
    const user = throwawayUser(t);
    const state = join(user.home, ".google_authenticator");
    const enroll = (extra: string[]) => runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-u", "-q", ...extra]);
    let r = enroll(["--qr-png", "/nonexistent-otpgate-dir/x.png"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\/nonexistent-otpgate-dir/);
    assert.equal(existsSync(state), false, "no state file after a failing --qr-png");
    const other = throwawayUser(t);
    r = enroll(["--qr-svg", join(other.home, "x.svg")]);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(existsSync(state), false, "no state file after a failing --qr-svg");
    const taken = join(user.home, "taken.png");
    writeFileSync(taken, "old");
    r = enroll(["--qr-png", taken]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /already exists/);
    assert.equal(existsSync(state), false);
    assert.equal(readFileSync(taken, "utf8"), "old");
    // the README's example: the admin's own directory
    const png = join("/root", `${uniqueName("otpgate-qr")}.png`);
    t.after(() => rmSync(png, { force: true }));
    r = enroll(["--qr-png", png]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(state));
    const st = statSync(png);
    assert.equal(st.uid, 0);
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(zbarimg(png), /^otpauth:\/\/totp\//);
  });
});
