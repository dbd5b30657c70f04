// RStudio Server's login path, emulated faithfully (test/helpers/rserver_pam_emu.py behaves like
// rserver-pam: same argv, stdin, conversation rules and PAM calls), against what
// `otpgate setup rstudio --root` writes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync, unlinkSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { CLI, ROOT, oathTotp, runCli, systemReady, tempDir, throwawayUser, uniqueName } from "../helpers/system.js";

const EMULATOR = join(ROOT, "test/helpers/rserver_pam_emu.py");

interface Rig {
  root: string;
  service: string;
  setup(extra: string[]): ReturnType<typeof runCli>;
  installPam(): void;
}

function rig(t: TestContext): Rig {
  const dir = tempDir(t);
  const root = join(dir, "root");
  mkdirSync(join(root, "etc/pam.d"), { recursive: true });
  mkdirSync(join(root, "etc/rstudio"), { recursive: true });
  writeFileSync(join(root, "etc/rstudio/rserver.conf"), "# Server Configuration File\nwww-port=8787\nauth-pam-require-password-prompt=1\n");
  const service = uniqueName("otpgate-rstudio");
  const pamFile = join("/etc/pam.d", service);
  t.after(() => existsSync(pamFile) && unlinkSync(pamFile));
  return {
    root,
    service,
    setup: (extra) => runCli(["setup", "rstudio", "--root", root, "--service", service, "--node", process.execPath, "--otpgate", CLI, ...extra]),
    installPam: () => copyFileSync(join(root, "etc/pam.d", service), pamFile),
  };
}

/** What rserver does at sign-in: run the PAM helper with USER SERVICE REQUIRE and the password box on stdin. */
function signIn(helper: string[], user: string, service: string, require: "0" | "1", passwordBox: string): { ok: boolean; trace: string } {
  const r = spawnSync(helper[0]!, [...helper.slice(1), user, service, require], { input: passwordBox, encoding: "utf8", timeout: 30_000 });
  return { ok: r.status === 0, trace: r.stderr };
}

const secretOf = (home: string) => readFileSync(join(home, ".google_authenticator"), "latin1").split("\n")[0]!;

describe("rstudio: user name + code in the password box", () => {
  test("setup writes the PAM service and rserver.conf; right code in, wrong and replayed out, with both prompt settings", (t) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const r = rig(t);
    const alice = throwawayUser(t);
    assert.equal(runCli(["enroll", "--user", alice.name, "-t", "-d", "-W", "-u", "-q"]).status, 0);
    const out = r.setup(["--admin", alice.name]);
    assert.equal(out.status, 0, out.stderr);
    assert.equal(readFileSync(join(r.root, "etc/rstudio/rserver.conf"), "utf8"), "# Server Configuration File\nwww-port=8787\nauth-pam-require-password-prompt=0\n");
    const pam = readFileSync(join(r.root, "etc/pam.d", r.service), "utf8");
    assert.match(pam, /pam_exec\.so quiet quiet_log expose_authtok .* pam noskewadj\n/);
    assert.match(pam, /^@include common-account$/m);
    assert.match(pam, /^@include common-session$/m);
    r.installPam();
    const emu = ["/usr/bin/python3", EMULATOR];
    const secret = secretOf(alice.home);
    for (const [require, offset] of [
      ["1", 0],
      ["0", 1],
    ] as const) {
      const code = oathTotp(secret, offset);
      const ok = signIn(emu, alice.name, r.service, require, code);
      assert.equal(ok.ok, true, `require=${require}: ${ok.trace}`);
      assert.match(ok.trace, /\[conv\] ECHO_OFF b'Password: ' -> password/);
      assert.equal(signIn(emu, alice.name, r.service, require, code).ok, false, `require=${require}: replayed`);
      assert.equal(signIn(emu, alice.name, r.service, require, "000000").ok, false, `require=${require}: wrong`);
    }
    assert.equal(r.setup(["--admin", alice.name]).stdout.includes("nothing to change"), true, "idempotent");
  });

  test("--dry-run changes nothing and --rollback restores rserver.conf byte for byte", (t) => {
    if (!systemReady(t, [])) return;
    const r = rig(t);
    const conf = join(r.root, "etc/rstudio/rserver.conf");
    const before = readFileSync(conf, "latin1");
    const dry = r.setup(["--allow-unenrolled", "--dry-run"]);
    assert.equal(dry.status, 0);
    assert.match(dry.stdout, /^-auth-pam-require-password-prompt=1\n\+auth-pam-require-password-prompt=0$/m);
    assert.equal(readFileSync(conf, "latin1"), before);
    assert.ok(!existsSync(join(r.root, "etc/pam.d", r.service)));
    assert.equal(r.setup(["--allow-unenrolled"]).status, 0);
    assert.equal(runCli(["setup", "rstudio", "--rollback", "--root", r.root]).status, 0);
    assert.equal(readFileSync(conf, "latin1"), before);
    assert.ok(!existsSync(join(r.root, "etc/pam.d", r.service)), "a file setup created is removed again");
  });
});

describe("rstudio: password immediately followed by the code (otpgate's helper + RStudio's rserver-pam)", () => {
  test("right password and code in; either one wrong out", async (t) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const r = rig(t);
    const bob = throwawayUser(t);
    assert.equal(runCli(["enroll", "--user", bob.name, "-t", "-d", "-W", "-u", "-q"]).status, 0);
    spawnSync("chpasswd", { input: `${bob.name}:c0rrect-h0rse\n` });
    const out = r.setup(["--admin", bob.name, "--factors", "password+code", "--rserver-pam", EMULATOR]);
    assert.equal(out.status, 0, out.stderr);
    const helper = join(r.root, "usr/local/lib/otpgate/rserver-pam-otpgate");
    // F9: no skew learning by default (needs rstudio-helper's --noskewadj from the login path's fix)
    assert.match(readFileSync(helper, "utf8"), / '--noskewadj' '--' "\$@"$/m);
    assert.match(readFileSync(join(r.root, "etc/rstudio/rserver.conf"), "utf8"), /^auth-pam-helper-path=\/usr\/local\/lib\/otpgate\/rserver-pam-otpgate$/m);
    assert.equal(readFileSync(join(r.root, "etc/pam.d", r.service), "utf8"), "@include common-auth\n@include common-account\n@include common-session\n");
    r.installPam();
    chmodSync(helper, 0o755);
    const secret = secretOf(bob.home);
    const statePath = join(bob.home, ".google_authenticator");
    const before = readFileSync(statePath);
    const code = oathTotp(secret);
    assert.equal(signIn([helper], bob.name, r.service, "1", "wrong-pass" + code).ok, false, "wrong password, right code");
    assert.deepEqual(readFileSync(statePath), before, "a wrong password leaves the state file byte-identical");
    assert.equal(signIn([helper], bob.name, r.service, "1", "c0rrect-h0rse000000").ok, false, "right password, wrong code");
    assert.equal(signIn([helper], bob.name, r.service, "1", "c0rrect-h0rse").ok, false, "password without a code");
    // The SAME code, now with the right password: the wrong password did not use it up.
    assert.equal(signIn([helper], bob.name, r.service, "1", "c0rrect-h0rse" + code).ok, true, "both right");
    assert.equal(signIn([helper], bob.name, r.service, "0", "c0rrect-h0rse" + code).ok, false, "the code is used up");
    const { statSync } = await import("node:fs");
    assert.equal(statSync(join(bob.home, ".google_authenticator")).uid, bob.uid, "the helper wrote the state file as the user");
  });
});

describe("rstudio setup validation", () => {
  test("password+code without RStudio's rserver-pam is refused and nothing is left changed", (t) => {
    if (!systemReady(t, [])) return;
    const r = rig(t);
    const conf = join(r.root, "etc/rstudio/rserver.conf");
    const before = readFileSync(conf, "latin1");
    const out = r.setup(["--allow-unenrolled", "--factors", "password+code", "--rserver-pam", "/opt/no/rserver-pam"]);
    assert.equal(out.status, 2);
    assert.match(out.stderr, /RStudio's PAM helper \/opt\/no\/rserver-pam does not exist.*every file was restored/);
    assert.equal(readFileSync(conf, "latin1"), before);
    assert.ok(!existsSync(join(r.root, "usr/local/lib/otpgate/rserver-pam-otpgate")));
    assert.ok(!existsSync(join(r.root, "etc/otpgate/setup-rstudio.json")));
  });
});
