// Refusals on the login path, under the real pam_exec (pamtester) and RStudio's helper path:
// - a refusal that proves nothing about the code (wrong password, malformed entry, unknown user)
//   changes nothing in the shared state file, so nobody without a secret can use up the owner's
//   RATE_LIMIT (issue 8 review F3);
// - with user=, PAM_USER must still be an existing account by its exact name (F7);
// - every refusal takes the same fixed time, so the code sign-in does not tell which accounts
//   exist or are enrolled (F8);
// - the RStudio helper honours --noskewadj (F9).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CLI, ROOT, enrolledUser, oathTotp, pamService, runCli, spawnTimed, syslogListener, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const stack = (args: string) => [
  `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam ${args}`,
  "auth requisite pam_deny.so",
  "auth required pam_permit.so",
];

const KEY_INFO = "SSH_AUTH_INFO_0=publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/** pamtester with PAM environment variables (-E), as sshd would export them. */
function pam(service: string, user: string, entry: string, env: string[] = []): boolean {
  const r = spawnSync("pamtester", [...env.flatMap((e) => ["-E", e]), service, user, "authenticate"], {
    input: entry + "\n",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    timeout: 20_000,
  });
  return r.status === 0;
}

/** pam() without blocking: several logins wait out their floors at once. */
async function pamAsync(service: string, user: string, entry: string, env: string[] = []): Promise<{ ok: boolean; ms: number }> {
  const r = await spawnTimed("pamtester", [...env.flatMap((e) => ["-E", e]), service, user, "authenticate"], { input: entry + "\n", timeoutMs: 20_000 });
  return { ok: r.status === 0, ms: r.ms };
}

function setPassword(name: string, password: string): void {
  assert.equal(spawnSync("chpasswd", { input: `${name}:${password}\n` }).status, 0, "chpasswd");
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe("refusals that prove nothing about the code do not touch the shared state", () => {
  test("wrong passwords, malformed entries and unknown users cannot lock the owner out of SSH key + code", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const log = syslogListener(t);
    const { user, secret } = enrolledUser(t);
    setPassword(user.name, "correct horse");
    const state = join(user.home, ".google_authenticator");
    writeFileSync(state, readFileSync(state, "latin1").replace(/^" TOTP_AUTH$/m, '" RATE_LIMIT 3 30\n" TOTP_AUTH'), "latin1");
    const before = readFileSync(state, "latin1");
    const pw = pamService(t, stack(`password log_socket=${log.socket}`));
    const code = pamService(t, stack(`log_socket=${log.socket}`));
    const ssh = pamService(t, stack(`require_publickey log_socket=${log.socket}`));
    // The attacker (an RStudio sign-in form, no secret known): wrong passwords with any code,
    // entries that cannot be a code, in both modes.
    // Each group at once (every refusal waits out the 1 s floor; nothing here depends on the order within a group).
    const guesses = await Promise.all([0, 1, 2, 3].map((i) => pamAsync(pw, user.name, `guess${i}000000`)));
    for (const g of guesses) assert.equal(g.ok, false, "wrong password");
    const entries = ["", "abc", "12345", "1234567", "x123456", "123456 "];
    const refused = await Promise.all(entries.map((entry) => pamAsync(code, user.name, entry)));
    entries.forEach((entry, k) => assert.equal(refused[k]!.ok, false, JSON.stringify(entry)));
    assert.equal(pam(pw, user.name, "correct horseabcdef"), false, "right password, malformed code");
    assert.equal(readFileSync(state, "latin1"), before, "nothing was recorded: RATE_LIMIT is untouched");
    // The owner over SSH: key + the right code.
    assert.equal(pam(ssh, user.name, oathTotp(secret), [KEY_INFO]), true, "the owner is not locked out");
    assert.match(log.lines().at(-1)!, /result=accepted via=totp$/);
    assert.ok(
      log
        .lines()
        .slice(0, 4)
        .every((l) => / result=rejected reason=password$/.test(l)),
      log.lines().join("\n"),
    );
  });
});

describe("user=: PAM_USER is resolved to an existing account", () => {
  test("names that are no account are refused, also with nullok; the exact name logs in", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const log = syslogListener(t);
    const { user, secret } = enrolledUser(t);
    const svc = throwawayUser(t);
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const otp = join(dir, "otp");
    mkdirSync(otp, { mode: 0o700 });
    chownSync(otp, svc.uid, svc.gid);
    copyFileSync(join(user.home, ".google_authenticator"), join(otp, user.name));
    chownSync(join(otp, user.name), svc.uid, svc.gid);
    const run = (name: string, entry: string) =>
      runCli(["pam", `user=${svc.name}`, `secret=${otp}/\${USER}`, "nullok", `log_socket=${log.socket}`], {
        input: entry + "\n",
        env: { PATH: "/usr/bin:/bin", PAM_TYPE: "auth", PAM_SERVICE: "otpgate-test", PAM_USER: name },
      }).status;
    // All at once (each refusal waits out the 1 s floor); one log line each, every one a refusal.
    const names = [user.name.toUpperCase(), `${user.name} `, ` ${user.name}`, `${user.name.slice(0, -1)}Q`, "a b", "otpgate-nosuch-user"];
    const statuses = await Promise.all(
      names.map(
        async (name) =>
          (
            await spawnTimed(process.execPath, [CLI, "pam", `user=${svc.name}`, `secret=${otp}/\${USER}`, "nullok", `log_socket=${log.socket}`], {
              input: "000000\n",
              env: { PATH: "/usr/bin:/bin", PAM_TYPE: "auth", PAM_SERVICE: "otpgate-test", PAM_USER: name },
            })
          ).status,
      ),
    );
    names.forEach((name, k) => assert.equal(statuses[k], 1, `${JSON.stringify(name)} is no account: refused`));
    const refusals = log.lines();
    assert.equal(refusals.length, names.length, refusals.join("\n"));
    for (const l of refusals) assert.match(l, /result=rejected reason=(unknown-user|invalid-user-name)/);
    assert.equal(run(user.name, oathTotp(secret)), 0, "the account itself, with its code");
    assert.match(log.lines().at(-1)!, /result=accepted via=totp$/);
  });
});

describe("one refusal floor for every reason", () => {
  test("code sign-in: unknown user, not enrolled and wrong code take the same time (>= 1 s)", { timeout: 180_000 }, (t) => {
    if (!systemReady(t, ["pamtester", "oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const unenrolled = throwawayUser(t);
    const code = pamService(t, stack(""));
    const nullok = pamService(t, stack("nullok"));
    const cases: [string, string, string, boolean][] = [
      ["unknown user", code, "otpgate-nosuch-user", false],
      ["not enrolled", code, unenrolled.name, false],
      ["wrong code", code, user.name, false],
      ["nullok: unknown user", nullok, "otpgate-nosuch-user", false],
      ["nullok: wrong code", nullok, user.name, false],
      ["nullok: not enrolled (accepted)", nullok, unenrolled.name, true],
    ];
    const times = new Map<string, number[]>(cases.map(([label]) => [label, []]));
    // One after another: run at once, the processes' own start (counted in the floor) outgrows the
    // 1 s on a 2-CPU machine, and the medians then show the start order instead of the floor.
    for (let i = 0; i < 7; i++) {
      const wrong = String((Number(oathTotp(secret)) + 500_000) % 1e6).padStart(6, "0");
      for (const [label, service, name, ok] of cases) {
        const t0 = process.hrtime.bigint();
        assert.equal(pam(service, name, wrong), ok, label);
        times.get(label)!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    t.diagnostic([...times].map(([label, xs]) => `${label}: median ${median(xs).toFixed(0)} ms [${xs.map((x) => x.toFixed(0)).join(" ")}]`).join("; "));
    const refusals = cases.filter((c) => !c[3]).map(([label]) => times.get(label)!);
    for (const xs of refusals) assert.ok(Math.min(...xs) >= 1000, `every refusal waits for the floor: ${xs.map((x) => x.toFixed(0)).join(" ")}`);
    const medians = refusals.map(median);
    const spread = Math.max(...medians) - Math.min(...medians);
    assert.ok(spread < 100, `refusal medians differ by ${spread.toFixed(0)} ms: ${medians.map((m) => m.toFixed(0)).join(" ")}`);
  });
});

describe("rstudio-helper --noskewadj", () => {
  test("a far-off code is no evidence for a new TIME_SKEW with --noskewadj, and is without it", { timeout: 60_000 }, (t) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    setPassword(user.name, "s3cret-Pw");
    const service = pamService(t, ["@include common-auth", "@include common-account"]);
    const state = join(user.home, ".google_authenticator");
    const helper = (extra: string[], box: string) =>
      spawnSync(process.execPath, [CLI, "rstudio-helper", "--rserver-pam", join(ROOT, "test/helpers/rserver_pam_emu.py"), ...extra, "--", user.name, service, "1"], { input: box, timeout: 30_000 })
        .status;
    const before = readFileSync(state, "latin1");
    // 10 steps (5 min) off: outside the window, inside the skew search.
    const far = oathTotp(secret, -10);
    assert.equal(helper(["--noskewadj"], "s3cret-Pw" + far), 1);
    assert.equal(readFileSync(state, "latin1"), before, "--noskewadj: no RESETTING_TIME_SKEW evidence recorded");
    assert.equal(helper([], "s3cret-Pw" + far), 1);
    assert.match(readFileSync(state, "latin1"), /^" RESETTING_TIME_SKEW /m, "without it the far-off code is recorded as skew evidence");
  });
});
