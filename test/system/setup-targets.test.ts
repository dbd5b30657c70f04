// Attacks on setup's targets (issue 8, second review): switching RStudio's factors keeps no stale
// stack (F1), setup refuses PAM services it does not own (F2), Match blocks setup cannot test are
// refused (F4), non-ASCII values reach otpgate byte for byte (F5), otpgate's block goes before
// every auth rule (F6). Real pamtester, RStudio's rserver-pam emulated, a private sshd.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { privateSshd } from "../helpers/sshd.js";
import { CLI, ROOT, oathTotp, runCli, sh, systemReady, tempDir, throwawayUser, uniqueName } from "../helpers/system.js";
import { sshdConnectionProblems, type GroupLookup } from "../../src/admin/sshd-effective.js";

const EMULATOR = join(ROOT, "test/helpers/rserver_pam_emu.py");
const AFTER_KEY = "SSH_AUTH_INFO_0=publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttackerDoesNotHaveThisKeyxxxxxxxxxxxxxxxxx";
const secretOf = (file: string) => readFileSync(file, "latin1").split("\n")[0]!;
const enroll = (name: string, extra: string[] = []) => {
  const r = runCli(["enroll", "--user", name, "-t", "-d", "-W", "-u", "-q", ...extra]);
  assert.equal(r.status, 0, r.stderr);
};

function pamtest(service: string, user: string, entry: string, env: string[] = []): { ok: boolean; out: string } {
  const r = spawnSync("pamtester", [...env.flatMap((e) => ["-E", e]), service, user, "authenticate"], {
    input: entry + "\n",
    encoding: "utf8",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    timeout: 20_000,
  });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !e.name.includes(".otpgate-backup-")) files[p] = readFileSync(p, "latin1");
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

function install(t: TestContext, from: string, service: string): void {
  const to = join("/etc/pam.d", service);
  copyFileSync(from, to);
  t.after(() => existsSync(to) && unlinkSync(to));
}

function rstudioRig(t: TestContext) {
  const root = join(tempDir(t), "root");
  mkdirSync(join(root, "etc/pam.d"), { recursive: true });
  mkdirSync(join(root, "etc/rstudio"), { recursive: true });
  writeFileSync(join(root, "etc/rstudio/rserver.conf"), "www-port=8787\n");
  const service = uniqueName("otpgate-rs");
  const original = "@include common-auth\n@include common-account\n@include common-session\n";
  writeFileSync(join(root, "etc/pam.d", service), original);
  return {
    root,
    service,
    original,
    pamFile: join(root, "etc/pam.d", service),
    helper: join(root, "usr/local/lib/otpgate/rserver-pam-otpgate"),
    run: (extra: string[]) => runCli(["setup", "rstudio", "--root", root, "--service", service, "--node", process.execPath, "--otpgate", CLI, ...extra]),
  };
}

describe("F1: switching RStudio's factors leaves no stale stack", () => {
  test("code, then password+code: the PAM service checks the password again (CODE+CODE refused, password+code in); doctor fails on the stale stack", { timeout: 120_000 }, (t) => {
    if (!systemReady(t, ["pamtester", "python3", "oathtool"])) return;
    const r = rstudioRig(t);
    const bob = throwawayUser(t);
    enroll(bob.name);
    spawnSync("chpasswd", { input: `${bob.name}:the real password\n` });
    assert.equal(r.run(["--admin", bob.name]).status, 0);
    const codeOnly = readFileSync(r.pamFile, "utf8");
    // --skew-adjust: the helper then runs without --noskewadj (F9 needs the login helper's change).
    const sw = r.run(["--admin", bob.name, "--factors", "password+code", "--rserver-pam", EMULATOR, "--skew-adjust"]);
    assert.equal(sw.status, 0, sw.stderr);
    install(t, r.pamFile, r.service);
    const secret = secretOf(join(bob.home, ".google_authenticator"));
    const signIn = (box: string) => spawnSync(r.helper, [bob.name, r.service, "1"], { input: box, encoding: "utf8", timeout: 30_000 }).status === 0;
    assert.equal(signIn(oathTotp(secret, -1) + oathTotp(secret)), false, "CODE+CODE (no password) got in");
    assert.equal(readFileSync(r.pamFile, "utf8"), r.original, "the PAM service is back to the password stack");
    assert.equal(signIn("the real password" + oathTotp(secret, 1)), true, "the right password + code is refused");

    // back to code: the helper path goes again, the code-only stack is back
    assert.equal(r.run(["--admin", bob.name]).status, 0);
    assert.doesNotMatch(readFileSync(join(r.root, "etc/rstudio/rserver.conf"), "utf8"), /auth-pam-helper-path/);
    assert.equal(readFileSync(r.pamFile, "utf8"), codeOnly);

    // doctor: the helper configured, but the service rserver-pam runs is otpgate's code-only stack
    assert.equal(r.run(["--admin", bob.name, "--factors", "password+code", "--rserver-pam", EMULATOR]).status, 0);
    writeFileSync(r.pamFile, codeOnly);
    const d = runCli(["doctor", "--root", r.root, "--rstudio-service", r.service, "--ssh-service", uniqueName("none"), "--user", bob.name, "--json"]);
    const findings = JSON.parse(d.stdout) as { check: string; severity: string; message: string }[];
    assert.ok(
      findings.some((f) => f.check === "pam:rstudio" && f.severity === "fail" && /password/.test(f.message)),
      d.stdout,
    );
    assert.equal(d.status, 1);
  });
});

describe("F2: setup refuses PAM services it does not own", () => {
  test("rstudio --service <the running sshd's service> is refused, nothing written", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["python3"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    await s.start();
    mkdirSync(join(s.root, "etc/rstudio"), { recursive: true });
    const before = snapshot(s.root);
    const r = runCli(["setup", "rstudio", "--root", s.root, "--service", s.service, "--node", process.execPath, "--otpgate", CLI, "--allow-unenrolled"]);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${s.service}.*sshd`, "s"));
    assert.deepEqual(snapshot(s.root), before);
  });

  test("rstudio: sshd, common-auth, sudo and a file another service includes are refused; ssh: an included file is refused", (t) => {
    if (!systemReady(t, [])) return;
    const r = rstudioRig(t);
    const shared = uniqueName("otpgate-shared");
    writeFileSync(join(r.root, "etc/pam.d", shared), "auth required pam_unix.so\n");
    writeFileSync(join(r.root, "etc/pam.d", "someapp"), `auth include ${shared}\naccount required pam_permit.so\n`);
    for (const f of ["sshd", "common-auth", "sudo", "login"]) copyFileSync(join("/etc/pam.d", f), join(r.root, "etc/pam.d", f));
    // sshd's service under another name, for an sshd not running yet (started later through a link of that name)
    const sshdCopy = uniqueName("otpgate-sshcopy");
    copyFileSync("/etc/pam.d/sshd", join(r.root, "etc/pam.d", sshdCopy));
    const before = snapshot(r.root);
    for (const service of ["sshd", "common-auth", "sudo", "login", "system-auth", shared, sshdCopy]) {
      const out = runCli(["setup", "rstudio", "--root", r.root, "--service", service, "--node", process.execPath, "--otpgate", CLI, "--allow-unenrolled"]);
      assert.equal(out.status, 2, `${service}: ${out.stdout}${out.stderr}`);
      assert.match(out.stderr, /--service/);
      assert.deepEqual(snapshot(r.root), before, service);
    }
    mkdirSync(join(r.root, "etc/ssh"), { recursive: true });
    writeFileSync(join(r.root, "etc/ssh/sshd_config"), "UsePAM yes\n");
    const before2 = snapshot(r.root);
    for (const service of ["common-auth", shared]) {
      const out = runCli(["setup", "ssh", "--root", r.root, "--service", service, "--node", process.execPath, "--otpgate", CLI, "--allow-unenrolled"]);
      assert.equal(out.status, 2, `ssh ${service}: ${out.stdout}${out.stderr}`);
      assert.match(out.stderr, /--service/);
      assert.deepEqual(snapshot(r.root), before2, service);
    }
  });
});

describe("F4: Match blocks setup cannot build a connection for are refused, not skipped", () => {
  const noGroupsLiteral = { memberOf: () => null, groupsOf: (): string[] => [] };
  const noGroups: GroupLookup = noGroupsLiteral;
  const config = (t: TestContext, body: string, extra: Record<string, string> = {}) => {
    const d = tempDir(t);
    sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(d, "hk")]);
    const base = `HostKey ${d}/hk\nUsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\nPasswordAuthentication no\n`;
    for (const [name, text] of Object.entries(extra)) {
      mkdirSync(join(d, "extra"), { recursive: true });
      writeFileSync(join(d, "extra", name), text);
    }
    writeFileSync(join(d, "sshd_config"), base + body.replaceAll("@D", d));
    return join(d, "sshd_config");
  };
  const weak = "  AuthenticationMethods publickey\n";
  test("Match Group with no enumerable member (empty, LDAP) is refused, naming it", (t) => {
    if (!systemReady(t, [])) return;
    const p = sshdConnectionProblems("/usr/sbin/sshd", "/", config(t, `Match Group otpgate-ldap-only\n${weak}`), "root", { groups: noGroups });
    assert.ok(
      p.some((m) => m.includes("Match Group otpgate-ldap-only")),
      JSON.stringify(p),
    );
  });
  test("an Include glob with a character class is read", (t) => {
    if (!systemReady(t, [])) return;
    const p = sshdConnectionProblems("/usr/sbin/sshd", "/", config(t, "Include @D/extra/[a-z]*.conf\n", { "lan.conf": `Match Address 10.0.0.0/8\n${weak}` }), "root");
    assert.ok(
      p.some((m) => m.includes("Match Address 10.0.0.0/8") && /authenticationmethods publickey\b/.test(m)),
      JSON.stringify(p),
    );
  });
  test("Match User zz*,!zzx: the test user is not the negated one", (t) => {
    if (!systemReady(t, [])) return;
    const p = sshdConnectionProblems("/usr/sbin/sshd", "/", config(t, `Match User zz*,!zzx\n${weak}`), "root");
    assert.ok(
      p.some((m) => m.includes("Match User zz*,!zzx") && /authenticationmethods publickey\b/.test(m)),
      JSON.stringify(p),
    );
  });
  test("a Match block without authentication keywords that cannot be tested is not a problem", (t) => {
    if (!systemReady(t, [])) return;
    const p = sshdConnectionProblems("/usr/sbin/sshd", "/", config(t, "Match Group otpgate-ldap-only\n  X11Forwarding no\n"), "root", { groups: noGroups });
    assert.deepEqual(p, []);
  });
});

describe("F5: non-ASCII values reach otpgate as written", () => {
  test("--secret /…/états/${USER} with --nullok: key + a wrong code is refused, key + the right code gets in", { timeout: 60_000 }, (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const eve = throwawayUser(t);
    s.authorize(eve);
    const top = tempDir(t);
    chmodSync(top, 0o755);
    const dir = join(top, "états");
    mkdirSync(dir);
    sh("chown", [eve.name, dir]);
    enroll(eve.name, ["-s", join(dir, eve.name)]);
    const r = runCli([
      "setup",
      "ssh",
      "--root",
      s.root,
      "--service",
      s.service,
      "--sshd",
      s.sshd,
      "--node",
      process.execPath,
      "--otpgate",
      CLI,
      "--admin",
      eve.name,
      "--nullok",
      "--secret",
      `${dir}/\${USER}`,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const pamFile = join(s.root, "etc/pam.d", s.service);
    install(t, pamFile, s.service);
    assert.equal(pamtest(s.service, eve.name, "000000", [AFTER_KEY]).ok, false, "key + a wrong code got in (the state file looked missing)");
    assert.ok(readFileSync(pamFile).includes(Buffer.from(`secret=${dir}/`, "utf8")), "the PAM line holds the path in UTF-8");
    const ok = pamtest(s.service, eve.name, oathTotp(secretOf(join(dir, eve.name))), [AFTER_KEY]);
    assert.equal(ok.ok, true, ok.out);
  });
});

describe("F6: otpgate's block goes before every auth rule", () => {
  test("a '-auth sufficient' line before common-auth: a wrong code is refused", { timeout: 60_000 }, (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const fay = throwawayUser(t);
    s.authorize(fay);
    enroll(fay.name);
    const pamFile = join(s.root, "etc/pam.d", s.service);
    writeFileSync(pamFile, "-auth sufficient pam_permit.so\n@include common-auth\n@include common-account\n");
    const r = runCli(["setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--node", process.execPath, "--otpgate", CLI, "--admin", fay.name]);
    assert.equal(r.status, 0, r.stderr);
    install(t, pamFile, s.service);
    assert.equal(pamtest(s.service, fay.name, "000000", [AFTER_KEY]).ok, false, "a wrong code got in: the sufficient line ends the stack first");
    assert.match(readFileSync(pamFile, "utf8"), /# otpgate: end[^]*-auth sufficient pam_permit\.so/);
  });
});
