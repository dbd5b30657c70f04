// The login decision under the real pam_exec (pamtester) and RStudio's helper path: what nullok
// may and may not mean, password + code (password first, the code committed only when both are
// right, no timing oracle), user names that must not reach other accounts or paths, and log lines
// that values from outside cannot forge.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { CLI, ROOT, enrolledUser, oathTotp, pamService, pamtester, syslogListener, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const stack = (args: string) => [
  `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam ${args}`,
  "auth requisite pam_deny.so",
  "auth required pam_permit.so",
];

function setPassword(name: string, password: string): void {
  const r = spawnSync("chpasswd", { input: `${name}:${password}\n` });
  assert.equal(r.status, 0, "chpasswd");
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timed(f: () => boolean): { ok: boolean; ms: number } {
  const t0 = process.hrtime.bigint();
  const ok = f();
  return { ok, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

describe("nullok never means 'no authentication'", () => {
  test("password + nullok: a user who is not enrolled must type the password (the whole entry)", (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    const log = syslogListener(t);
    const user = throwawayUser(t);
    setPassword(user.name, "Corr3ct-Horse");
    const service = pamService(t, stack(`password nullok log_socket=${log.socket}`));
    assert.equal(pamtester(service, user.name, "anything").ok, false, "any text: refused");
    assert.equal(pamtester(service, user.name, "").ok, false, "empty: refused");
    assert.equal(pamtester(service, user.name, "Corr3ct-Horse123456").ok, false, "password + digits is not the password");
    assert.equal(pamtester(service, user.name, "Corr3ct-Horse").ok, true, "the password alone: in");
    const lines = log.lines();
    assert.match(lines.at(-1)!, /result=accepted via=nullok\+password$/);
    assert.match(lines[0]!, /result=rejected reason=password$/);
  });

  test("bare nullok (code only, nothing else checked here) still lets the unenrolled through, with a warning field", (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    const log = syslogListener(t);
    const user = throwawayUser(t);
    assert.equal(pamtester(pamService(t, stack(`nullok log_socket=${log.socket}`)), user.name, "").ok, true);
    assert.match(log.lines().at(-1)!, /result=accepted via=nullok warning=no-other-factor-checked$/);
  });
});

describe("password + code", () => {
  test("a wrong password does not use up the code: right password + the same code in the same step is accepted", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const log = syslogListener(t);
    const { user, secret } = enrolledUser(t);
    setPassword(user.name, "s3cret-Pw");
    const state = join(user.home, ".google_authenticator");
    const service = pamService(t, stack(`password log_socket=${log.socket}`));
    const before = readFileSync(state, "latin1");
    // Codes from the step before up to the next step are in the window: pick the current one and
    // retry within the same 30 s.
    const code = oathTotp(secret);
    assert.equal(pamtester(service, user.name, "wrong-Pw" + code).ok, false, "wrong password");
    assert.equal(readFileSync(state, "latin1"), before, "nothing recorded for a wrong password");
    assert.equal(pamtester(service, user.name, "s3cret-Pw" + code).ok, true, "right password, same code: accepted (not a replay)");
    assert.equal(pamtester(service, user.name, "s3cret-Pw" + code).ok, false, "now it is used up");
    const lines = log.lines();
    assert.match(lines[0]!, /result=rejected reason=password$/);
    assert.match(lines[1]!, /result=accepted via=totp\+password$/);
    assert.match(lines[2]!, /result=rejected reason=replay$/);
  });

  test("8-digit codes (OTPGATE_DIGITS 8): the split is by the account's digit count", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const user = throwawayUser(t);
    setPassword(user.name, "pw12");
    const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
    writeFileSync(join(user.home, ".google_authenticator"), `${SECRET}\n" DISALLOW_REUSE\n" OTPGATE_TOTP_AUTH\n" OTPGATE_DIGITS 8\n`, { mode: 0o400 });
    spawnSync("chown", [`${user.uid}:${user.gid}`, join(user.home, ".google_authenticator")]);
    const code8 = spawnSync("oathtool", ["--totp", "-d", "8", "-b", SECRET], { encoding: "utf8" }).stdout.trim();
    const service = pamService(t, stack("password"));
    assert.equal(pamtester(service, user.name, "pw" + code8).ok, false, "6-digit split would take 'pw12' as the password");
    assert.equal(pamtester(service, user.name, "pw12" + code8).ok, true);
  });

  test("timing does not tell which factor was wrong (pamtester)", { timeout: 120_000 }, (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    setPassword(user.name, "s3cret-Pw");
    // Reuse allowed so the same right code exercises the same path every time (also on old code).
    const state = join(user.home, ".google_authenticator");
    writeFileSync(state, readFileSync(state, "latin1").replace(/^" DISALLOW_REUSE.*\n/m, ""), "latin1");
    const service = pamService(t, stack("password"));
    const wrongPw: number[] = [];
    const wrongCode: number[] = [];
    for (let i = 0; i < 6; i++) {
      const code = oathTotp(secret);
      const a = timed(() => pamtester(service, user.name, "wrong-Pw" + code).ok);
      const b = timed(() => pamtester(service, user.name, "s3cret-Pw" + String((Number(code) + 1) % 1e6).padStart(6, "0")).ok);
      assert.equal(a.ok || b.ok, false);
      wrongPw.push(a.ms);
      wrongCode.push(b.ms);
    }
    const diff = Math.abs(median(wrongPw) - median(wrongCode));
    t.diagnostic(
      `pam: wrong password median ${median(wrongPw).toFixed(0)} ms [${wrongPw.map((x) => x.toFixed(0)).join(" ")}], wrong code median ${median(wrongCode).toFixed(0)} ms [${wrongCode.map((x) => x.toFixed(0)).join(" ")}]`,
    );
    assert.ok(diff < 60, `medians differ by ${diff.toFixed(0)} ms`);
  });
});

describe("rstudio-helper: password first, then the code", () => {
  function helperRig(t: TestContext, extra: string[]): string[] {
    const dir = tempDir(t);
    const service = pamService(t, ["@include common-auth", "@include common-account"]);
    void dir;
    return [process.execPath, CLI, "rstudio-helper", "--rserver-pam", join(ROOT, "test/helpers/rserver_pam_emu.py"), ...extra, "--", "USER", service, "1"];
  }
  function signIn(argv: string[], user: string, box: string): boolean {
    const a = argv.map((x) => (x === "USER" ? user : x));
    return spawnSync(a[0]!, a.slice(1), { input: box, timeout: 30_000 }).status === 0;
  }

  test("wrong password does not burn the code; timing does not tell which factor was wrong", { timeout: 180_000 }, (t) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    setPassword(user.name, "s3cret-Pw");
    const helper = helperRig(t, []);
    const code = oathTotp(secret);
    assert.equal(signIn(helper, user.name, "wrong-Pw" + code), false);
    assert.equal(signIn(helper, user.name, "s3cret-Pw" + code), true, "the code was not used up by the wrong password");
    const state = join(user.home, ".google_authenticator");
    writeFileSync(state, readFileSync(state, "latin1").replace(/^" DISALLOW_REUSE.*\n/m, ""), "latin1");
    const wrongPw: number[] = [];
    const wrongCode: number[] = [];
    for (let i = 0; i < 3; i++) {
      const c = oathTotp(secret);
      const a = timed(() => signIn(helper, user.name, "wrong-Pw" + c));
      const b = timed(() => signIn(helper, user.name, "s3cret-Pw" + String((Number(c) + 1) % 1e6).padStart(6, "0")));
      assert.equal(a.ok || b.ok, false);
      wrongPw.push(a.ms);
      wrongCode.push(b.ms);
    }
    const diff = Math.abs(median(wrongPw) - median(wrongCode));
    t.diagnostic(
      `rstudio-helper: wrong password median ${median(wrongPw).toFixed(0)} ms [${wrongPw.map((x) => x.toFixed(0)).join(" ")}], wrong code median ${median(wrongCode).toFixed(0)} ms [${wrongCode.map((x) => x.toFixed(0)).join(" ")}]`,
    );
    assert.ok(diff < 150, `medians differ by ${diff.toFixed(0)} ms`);
  });

  test("the helper's log line escapes the user name rserver passes on (it comes from the sign-in form)", { timeout: 60_000 }, (t) => {
    if (!systemReady(t, ["python3"])) return;
    const log = syslogListener(t);
    const helper = helperRig(t, ["--log-socket", log.socket]);
    assert.equal(signIn(helper, "x result=accepted\nuser=root", "pw123456"), false);
    const lines = log.lines();
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, / otpgate\[\d+\]: user="x result=accepted\\nuser=root" service=\S+ helper=rstudio result=rejected reason=invalid-user-name problem=/);
  });

  test("--nullok: for a user who is not enrolled the whole entry is the password", { timeout: 60_000 }, (t) => {
    if (!systemReady(t, ["python3"])) return;
    const user = throwawayUser(t);
    setPassword(user.name, "pw-only");
    const helper = helperRig(t, ["--nullok"]);
    assert.equal(signIn(helper, user.name, "pw-only123456"), false);
    assert.equal(signIn(helper, user.name, "pw-only"), true);
  });
});

describe("user names", () => {
  test("a numeric PAM_USER is a name, never a uid", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const service = pamService(t, stack(""));
    assert.equal(pamtester(service, String(user.uid), oathTotp(secret)).ok, false, `PAM_USER=${user.uid} must not log in as ${user.name}`);
    assert.equal(pamtester(service, user.name, oathTotp(secret)).ok, true, "the code was not used up");
  });

  test("user=: PAM_USER cannot walk out of the secret= directory", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const log = syslogListener(t);
    const dir = tempDir(t);
    mkdirSync(join(dir, "otp"), { mode: 0o700 });
    mkdirSync(join(dir, "other"), { mode: 0o700 });
    const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
    writeFileSync(join(dir, "other", "x.ga"), `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`, { mode: 0o400 });
    const service = pamService(t, stack(`secret=${dir}/otp/\${USER}.ga user=root log_socket=${log.socket}`));
    for (const name of ["../other/x", "..", ".", "a/b", "x\u0001y"]) {
      assert.equal(pamtester(service, name, oathTotp(SECRET)).ok, false, JSON.stringify(name));
    }
    assert.match(log.lines()[0]!, /user=\.\.\/other\/x .*result=rejected reason=invalid-user-name problem="the user name contains \\"\/\\""$/);
  });
});

describe("log lines cannot be forged", () => {
  test("PAM_RHOST and the user name are escaped: no fake result= field, no new line", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const log = syslogListener(t);
    const { user } = enrolledUser(t);
    const service = pamService(t, stack(`log_socket=${log.socket}`));
    assert.equal(pamtester(service, user.name, "000000", undefined, ["rhost=x result=accepted via=totp"]).ok, false);
    assert.equal(pamtester(service, "evil result=accepted", "000000").ok, false);
    assert.equal(pamtester(service, user.name, "000000", undefined, ["rhost=a\nuser=root result=accepted"]).ok, false);
    const lines = log.lines();
    assert.equal(lines.length, 3, lines.join("\n"));
    for (const l of lines) {
      const unquoted = l.replace(/"(?:[^"\\]|\\.)*"/g, '""');
      assert.equal(unquoted.match(/ result=/g)?.length, 1, `exactly one result field: ${l}`);
      assert.match(l, / result=rejected /);
    }
    assert.match(lines[0]!, / rhost="x result=accepted via=totp" /);
    assert.match(lines[1]!, /user="evil result=accepted" /);
    assert.match(lines[2]!, / rhost="a\\nuser=root result=accepted" /);
  });
});
