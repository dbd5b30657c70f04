// otpgate pam under the real pam_exec (driven by pamtester): options, logging, and the guarantees
// of the login path (fail closed, never hang, never log a code).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CLI, enrolledUser, oathTotp, pamService, pamtester, pamtesterAsync, runCli, syslogListener, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const stack = (args: string) => [
  `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam ${args}`,
  "auth requisite pam_deny.so",
  "auth required pam_permit.so",
];

describe("otpgate pam under pam_exec", () => {
  test("accepts the right code once; logs one line per decision with user, service, rhost and outcome, never the code", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool", "python3"])) return;
    const log = syslogListener(t);
    const { user, secret } = enrolledUser(t);
    const service = pamService(t, stack(`log_socket=${log.socket}`));
    const code = oathTotp(secret);
    assert.equal(pamtester(service, user.name, code, undefined, ["rhost=203.0.113.7"]).ok, true);
    assert.equal(pamtester(service, user.name, code, undefined, ["rhost=203.0.113.7"]).ok, false);
    assert.equal(pamtester(service, user.name, "12ab56").ok, false);
    const lines = log.lines();
    assert.equal(lines.length, 3, lines.join("\n"));
    assert.match(lines[0]!, new RegExp(`^<86>.* otpgate\\[\\d+\\]: user=${user.name} service=${service} rhost=203\\.0\\.113\\.7 result=accepted via=totp$`));
    assert.match(lines[1]!, /result=rejected reason=replay$/);
    assert.match(lines[2]!, /rhost=- result=rejected reason=malformed$/);
    for (const l of lines) assert.doesNotMatch(l, new RegExp(code), "never the code");
  });

  test("not enrolled: refused, or let through with nullok; unknown users refused", (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    const user = throwawayUser(t);
    assert.equal(pamtester(pamService(t, stack("")), user.name, "123456").ok, false);
    assert.equal(pamtester(pamService(t, stack("nullok")), user.name, "").ok, true);
    assert.equal(pamtester(pamService(t, stack("nullok")), "no-such-user-otpgate", "123456").ok, false);
  });

  test("unknown or inapplicable options fail closed, with a log line saying why", async (t) => {
    if (!systemReady(t, ["pamtester", "oathtool", "python3"])) return;
    const log = syslogListener(t);
    const { user, secret } = enrolledUser(t);
    // All at once: each refusal waits out the 1 s floor, and nothing here depends on their order.
    const bads = ["frobnicate", "forward_pass", "authtok_prompt=Code:", "allowed_perm=0", "grace_period=-5"];
    const results = await Promise.all(bads.map((bad) => pamtesterAsync(pamService(t, stack(`log_socket=${log.socket} ${bad}`)), user.name, oathTotp(secret))));
    bads.forEach((bad, k) => assert.equal(results[k]!.ok, false, bad));
    const lines = log.lines().join("\n");
    assert.equal(lines.split("\n").length, bads.length, lines);
    // The problem is one escaped field (it quotes option text from the PAM line).
    assert.match(lines, /result=error reason=config problem="Unrecognized option \\"frobnicate\\""$/m);
    assert.match(lines, /Option \\"forward_pass\\" cannot work with otpgate pam: pam_exec cannot hand a password on/);
    assert.match(lines, /pam_exec's prompt is always 'Password: '/);
    assert.match(lines, /allowed_perm setting must be a positive octal integer/);
    assert.match(lines, /grace_period must be a positive number of seconds/);
  });

  test("grace_period: a second login from the same host needs no code; another host does", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const service = pamService(t, stack("grace_period=3600"));
    assert.equal(pamtester(service, user.name, oathTotp(secret), undefined, ["rhost=198.51.100.1"]).ok, true);
    assert.match(readFileSync(join(user.home, ".google_authenticator"), "latin1"), /^" LAST0 198\.51\.100\.1 \d+$/m);
    assert.equal(pamtester(service, user.name, "", undefined, ["rhost=198.51.100.1"]).ok, true, "same host within the grace period");
    assert.equal(pamtester(service, user.name, "", undefined, ["rhost=198.51.100.2"]).ok, false, "another host");
    assert.equal(pamtester(service, user.name, "").ok, false, "no PAM_RHOST, no grace");
  });

  test("secret= with user=: a root-owned file for every user, checked as that account", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const user = throwawayUser(t);
    const dir = tempDir(t);
    mkdirSync(join(dir, "otp"), { mode: 0o700 });
    const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
    writeFileSync(join(dir, "otp", `${user.name}.ga`), `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`, { mode: 0o400 });
    const service = pamService(t, stack(`secret=${dir}/otp/\${USER}.ga user=root`));
    const code = oathTotp(SECRET);
    assert.equal(pamtester(service, user.name, code).ok, true);
    assert.equal(pamtester(service, user.name, code).ok, false);
    chownSync(join(dir, "otp", `${user.name}.ga`), user.uid, user.gid);
    assert.equal(pamtester(service, user.name, oathTotp(SECRET, 1)).ok, false, "owned by the wrong account: refused");
    assert.equal(pamtester(pamService(t, stack(`secret=~/x user=root`)), user.name, code).ok, false, "~ with user= is a config error");
  });

  test("never hangs: with stdin left open it gives up within its time limit", { timeout: 30_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const user = throwawayUser(t);
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, "pam"], { env: { PAM_USER: user.name, PAM_TYPE: "auth", PAM_SERVICE: "x" }, stdio: ["pipe", "ignore", "ignore"] });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.notEqual(code, 0);
    assert.ok(Date.now() - started < 12_000, `took ${Date.now() - started} ms`);
    child.stdin!.destroy();
  });

  test("only the auth phase; oversized input refused", (t) => {
    if (!systemReady(t, [])) return;
    const { user, secret } = enrolledUser(t);
    const base = { PAM_USER: user.name, PAM_SERVICE: "x" };
    assert.equal(runCli(["pam"], { input: oathTotp(secret), env: { ...base, PAM_TYPE: "account" } }).status, 2);
    assert.equal(runCli(["pam"], { input: "1".repeat(600), env: { ...base, PAM_TYPE: "auth" } }).status, 1);
    const ok = runCli(["pam"], { input: oathTotp(secret), env: { ...base, PAM_TYPE: "auth" } });
    assert.equal(ok.status, 0);
    assert.equal(ok.stdout + ok.stderr, "", "prints nothing");
  });
});
