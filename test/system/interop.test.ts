// otpgate and the real pam_google_authenticator.so (through pamtester) share one state file of a
// throwaway user, in real time: whatever one of them uses up or records, the other honours.
import assert from "node:assert/strict";
import { chownSync, readdirSync, readFileSync, statSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { oathHotp, oathTotp, pamService, pamtester, runCli, sh, systemReady, throwawayUser } from "../helpers/system.js";

const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";

interface Setup {
  user: ReturnType<typeof throwawayUser>;
  service: string;
  path: string;
  write(text: string): void;
  read(): string;
  otpgate(code: string): { exit: number | null; json: Record<string, unknown> };
  module(code: string): boolean;
}

function setup(t: TestContext): Setup | null {
  if (!systemReady(t, ["pamtester", "oathtool", "pam_google_authenticator.so", "google-authenticator"])) return null;
  const user = throwawayUser(t);
  const service = pamService(t, ["auth required pam_google_authenticator.so"]);
  const path = join(user.home, ".google_authenticator");
  return {
    user,
    service,
    path,
    write(text) {
      rmSync(path, { force: true });
      writeFileSync(path, text, { mode: 0o400 });
      chownSync(path, user.uid, user.gid);
    },
    read: () => readFileSync(path, "latin1"),
    otpgate(code) {
      const r = runCli(["verify", "--user", user.name, "--json", code]);
      return { exit: r.status, json: JSON.parse(r.stdout || "{}") as Record<string, unknown> };
    },
    module: (code) => pamtester(service, user.name, code).ok,
  };
}

const lines = (...l: string[]) => l.join("\n") + "\n";

describe("interop with pam_google_authenticator.so on a shared file", () => {
  test("a TOTP code used by otpgate is refused by the module, and the other way round", (t) => {
    const s = setup(t);
    if (!s) return;
    s.write(lines(SECRET, '" WINDOW_SIZE 3', '" DISALLOW_REUSE', '" TOTP_AUTH'));
    const now = oathTotp(SECRET);
    assert.equal(s.otpgate(now).exit, 0);
    assert.equal(s.module(now), false, "the module refuses the code otpgate used");
    const next = oathTotp(SECRET, 1);
    assert.equal(s.module(next), true);
    const again = s.otpgate(next);
    assert.equal(again.exit, 1);
    assert.equal(again.json.reason, "replay");
    assert.equal(statSync(s.path).uid, s.user.uid, "the file stays the user's");
    assert.equal(statSync(s.path).mode & 0o777, 0o400);
    assert.deepEqual(
      readdirSync(s.user.home).filter((n) => n.startsWith(".google_authenticator")),
      [".google_authenticator"],
    );
  });

  test("an emergency code consumed by one is refused by the other", (t) => {
    const s = setup(t);
    if (!s) return;
    s.write(lines(SECRET, '" TOTP_AUTH', "11111111", "22222222", "33333333"));
    assert.equal(s.otpgate("11111111").exit, 0);
    assert.equal(s.module("11111111"), false);
    assert.equal(s.module("22222222"), true);
    assert.equal(s.otpgate("22222222").exit, 1);
    assert.equal(s.read(), lines(SECRET, '" TOTP_AUTH', "33333333"));
  });

  test("an HOTP counter advanced by one is honoured by the other", (t) => {
    const s = setup(t);
    if (!s) return;
    s.write(lines(SECRET, '" WINDOW_SIZE 3', '" HOTP_COUNTER 1'));
    assert.equal(s.module(oathHotp(SECRET, 1)), true);
    assert.match(s.read(), /HOTP_COUNTER 2\n/);
    assert.equal(s.otpgate(oathHotp(SECRET, 1)).exit, 1, "counter 1 is used up");
    assert.match(s.read(), /HOTP_COUNTER 3\n/, "a failed attempt advances the counter, as in the module");
    assert.equal(s.otpgate(oathHotp(SECRET, 3)).exit, 0);
    assert.equal(s.module(oathHotp(SECRET, 3)), false);
    assert.equal(s.module(oathHotp(SECRET, 5)), true);
    assert.match(s.read(), /HOTP_COUNTER 6\n/);
  });

  test("rate-limit stamps written by one count for the other", (t) => {
    const s = setup(t);
    if (!s) return;
    const wrong = (offset: number) => String((Number(oathTotp(SECRET)) + 500000 + offset) % 1000000).padStart(6, "0");
    s.write(lines(SECRET, '" RATE_LIMIT 3 30', '" TOTP_AUTH'));
    assert.equal(s.otpgate(wrong(1)).exit, 1);
    assert.equal(s.otpgate(wrong(2)).exit, 1);
    assert.equal(s.module(wrong(3)), false);
    assert.equal(s.module(oathTotp(SECRET)), false, "4th attempt within 30 s: the module refuses even the right code");
    s.write(lines(SECRET, '" RATE_LIMIT 3 30', '" TOTP_AUTH'));
    for (let i = 0; i < 3; i++) assert.equal(s.module(wrong(i)), false);
    const r = s.otpgate(oathTotp(SECRET));
    assert.equal(r.exit, 1);
    assert.equal(r.json.reason, "rate-limited");
  });

  test("a file written by the real google-authenticator tool works with otpgate, as its owner and for root", (t) => {
    const s = setup(t);
    if (!s) return;
    sh("runuser", ["-u", s.user.name, "--", "env", `HOME=${s.user.home}`, "google-authenticator", "-t", "-d", "-f", "-u", "-w", "3", "-Q", "NONE", "-C", "-q", "-e", "3"]);
    const text = s.read();
    const secret = text.split("\n")[0]!;
    const scratch = text.trim().split("\n").slice(-1)[0]!;
    const asUser = runCli(["verify", scratch], { uid: s.user.uid, gid: s.user.gid, env: { PATH: "/usr/bin:/bin", HOME: s.user.home } });
    assert.equal(asUser.status, 0, asUser.stderr);
    assert.match(asUser.stderr, /accepted: emergency code, now used up \(2 left\)/);
    // One code for both calls: computing it twice could cross a 30 s step between them.
    const code = oathTotp(secret);
    assert.equal(s.otpgate(code).exit, 0);
    assert.equal(s.module(code), false, "the module refuses the code otpgate used (DISALLOW_REUSE written by otpgate)");
    assert.equal(statSync(s.path).uid, s.user.uid);
  });

  test("SHA256/8-digit enrollments fail closed in the module: neither their code nor the SHA1 6-digit code gets in", (t) => {
    const s = setup(t);
    if (!s) return;
    s.write(lines(SECRET, '" DISALLOW_REUSE', '" OTPGATE_ALGORITHM SHA256', '" OTPGATE_DIGITS 8', '" OTPGATE_TOTP_AUTH', "44444444"));
    const at = String(Math.floor(Date.now() / 1000));
    const sha256 = sh("oathtool", ["--totp=sha256", "--digits=8", "-N", `@${at}`, "-b", SECRET]).trim();
    assert.equal(s.module(oathTotp(SECRET)), false, "the SHA1 6-digit code of the same secret is refused");
    assert.equal(s.module(sha256), false, "the module cannot check SHA256 codes and refuses them");
    assert.equal(s.otpgate(sha256).exit, 0, "otpgate accepts the SHA256 8-digit code");
    assert.equal(s.module("44444444"), true, "emergency codes work in both");
  });

  test("a user without a state file is not enrolled (exit 1), and a non-root user cannot act for another", (t) => {
    const s = setup(t);
    if (!s) return;
    const r = runCli(["verify", "--user", s.user.name, "123456"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${s.user.name} is not enrolled \\(no ${s.path}\\); enroll the user with otpgate enroll`));
    const other = runCli(["verify", "--user", "root", "123456"], { uid: s.user.uid, gid: s.user.gid });
    assert.equal(other.status, 2);
    assert.match(other.stderr, /only root can act on another user's account/);
  });
});
