// otpgate enroll against real components: the reference PAM module accepts what it writes, a real
// QR scanner reads what it draws, and a person answering at a terminal gets google-authenticator's
// questions, each with its effect on the file.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { parseKeyUri } from "../../src/core/otpauth-uri.js";
import { gridPng, inkGrid } from "../helpers/qr-image.js";
import { CLI, oathHotp, oathTotp, pamService, pamtester, ptyDrive, runCli, systemReady, tempDir, throwawayUser, zbarimg } from "../helpers/system.js";

const firstLine = (path: string) => readFileSync(path, "latin1").split("\n")[0]!;

describe("otpgate enroll", () => {
  test("a file written for another user is accepted by pam_google_authenticator.so with an oathtool code", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool", "pam_google_authenticator.so"])) return;
    const user = throwawayUser(t);
    const r = runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-r", "3", "-R", "30", "-q"]);
    assert.equal(r.status, 0, r.stderr);
    const path = join(user.home, ".google_authenticator");
    const st = statSync(path);
    assert.equal(st.uid, user.uid, "owned by the user");
    assert.equal(st.mode & 0o777, 0o400);
    assert.deepEqual(
      readdirSync(user.home).filter((n) => n.includes("google_authenticator")),
      [".google_authenticator"],
      "no temp file left",
    );
    const text = readFileSync(path, "latin1");
    assert.match(text, /^[A-Z2-7]{32}\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n(\d{8}\n){5}$/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(firstLine(path)), "-q shows no secret");
    const service = pamService(t, ["auth required pam_google_authenticator.so"]);
    assert.equal(pamtester(service, user.name, oathTotp(firstLine(path))).ok, true);
    assert.equal(pamtester(service, user.name, "000000").ok, false);
  });

  test("HOTP enrollment works with the module too (code for counter 1)", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool", "pam_google_authenticator.so"])) return;
    const user = throwawayUser(t);
    const r = runCli(["enroll", "--user", user.name, "-c", "-W", "-u", "-e", "2", "-Q", "NONE"]);
    assert.equal(r.status, 0, r.stderr);
    const path = join(user.home, ".google_authenticator");
    const secret = firstLine(path);
    assert.match(r.stdout, new RegExp(`Your verification code for code 1 is ${oathHotp(secret, 1)}`));
    const service = pamService(t, ["auth required pam_google_authenticator.so"]);
    assert.equal(pamtester(service, user.name, oathHotp(secret, 1)).ok, true);
  });

  test("--algorithm SHA256 --digits 8 warns about the reference module and writes extension lines otpgate checks", (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const dir = tempDir(t);
    const path = join(dir, "ga");
    const r = runCli(["enroll", "-s", path, "-t", "-d", "-W", "-u", "-q", "--algorithm", "sha256", "--digits", "8"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: pam_google_authenticator\.so only checks SHA1 codes with 6 digits/);
    assert.match(readFileSync(path, "latin1"), /" OTPGATE_ALGORITHM SHA256\n" OTPGATE_DIGITS 8\n" OTPGATE_TOTP_AUTH\n/);
    const code = spawnSync("oathtool", ["--totp=sha256", "--digits=8", "-b", firstLine(path)], { encoding: "utf8" }).stdout.trim();
    assert.equal(runCli(["verify", "-s", path, code]).status, 0);
  });

  for (const mode of ["UTF8", "ANSI"] as const) {
    test(`the terminal QR code (${mode}) decodes with zbarimg to the file's secret, label and issuer`, (t) => {
      if (!systemReady(t, ["zbarimg"])) return;
      const dir = tempDir(t);
      const path = join(dir, "ga");
      const r = runCli(["enroll", "-s", path, "-t", "-D", "-W", "-u", "-Q", mode, "-l", "bob:x/y#z+é", "-i", "ACME Corp"]);
      assert.equal(r.status, 0, r.stderr);
      const block = r.stdout.slice(0, r.stdout.indexOf("Your new secret key is:"));
      const png = join(dir, "qr.png");
      writeFileSync(
        png,
        gridPng(inkGrid(block, mode), (ink) => ink),
      );
      const uri = zbarimg(png);
      assert.equal(uri, `otpauth://totp/bob:x/y#z+%C3%A9?secret=${firstLine(path)}&issuer=ACME%20Corp`);
      const parsed = parseKeyUri(uri.replace("#", "%23"));
      assert.equal(parsed.secret, firstLine(path));
      assert.equal(parsed.issuer, "ACME Corp");
    });
  }

  test("--qr-png and --qr-svg write scannable images, mode 0600, only after the file is saved", (t) => {
    if (!systemReady(t, ["zbarimg"])) return;
    const dir = tempDir(t);
    const path = join(dir, "ga");
    const r = runCli(["enroll", "-s", path, "-t", "-d", "-W", "-u", "-S", "60", "-q", "--qr-png", join(dir, "a.png"), "--qr-svg", join(dir, "a.svg"), "-l", "carol@h", "-i", "h"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(join(dir, "a.png")).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "a.svg")).mode & 0o777, 0o600);
    assert.equal(zbarimg(join(dir, "a.png")), `otpauth://totp/carol@h?secret=${firstLine(path)}&issuer=h&period=60`);
    assert.match(readFileSync(join(dir, "a.svg"), "utf8"), /^<svg/);
    assert.match(readFileSync(path, "latin1"), /" STEP_SIZE 60\n/);
  });
});

describe("otpgate enroll at a terminal (pseudo-terminal, answered like a person)", () => {
  const Q = {
    mode: "time-based \\(y/n\\) ",
    code: "Enter code from app \\(-1 to skip\\): ",
    update: 'update your "[^"]+" file\\? \\(y/n\\) ',
    reuse: "man-in-the-middle attacks \\(y/n\\) ",
    window: "Do you want to do so\\? \\(y/n\\) ",
    rate: "rate-limiting\\? \\(y/n\\) ",
  };
  function enrollAt(t: TestContext, steps: [string, string][], extra: string[] = []) {
    const dir = tempDir(t);
    const path = join(dir, "ga");
    const result = ptyDrive(steps, [process.execPath, CLI, "enroll", "-s", path, ...extra]);
    return { ...result, path, text: existsSync(path) ? readFileSync(path, "latin1") : null };
  }
  const ready = (t: TestContext) => systemReady(t, ["python3", "oathtool"]);

  test("all questions in google-authenticator's order; yes to all writes every option", (t) => {
    if (!ready(t)) return;
    const r = enrollAt(t, [
      [Q.mode, "y"],
      [Q.code, "-1"],
      [Q.update, "y"],
      [Q.reuse, "y"],
      [Q.window, "y"],
      [Q.rate, "y"],
    ]);
    assert.equal(r.failedStep, null, r.output);
    assert.equal(r.exit, 0, r.output);
    assert.match(r.output, /Code confirmation skipped/);
    assert.match(r.text!, /^[A-Z2-7]{32}\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 17\n" DISALLOW_REUSE\n" TOTP_AUTH\n(\d{8}\n){5}$/);
  });

  test("time-based? no -> counter-based file with the HOTP window question", (t) => {
    if (!ready(t)) return;
    const r = enrollAt(t, [
      [Q.mode, "n"],
      [Q.update, "y"],
      ["increased from its default size of 3 to 17. Do you want to do so\\? \\(y/n\\) ", "n"],
      [Q.rate, "n"],
    ]);
    assert.equal(r.failedStep, null, r.output);
    assert.match(r.text!, /^[A-Z2-7]{32}\n" HOTP_COUNTER 1\n/);
    assert.match(r.output, /Your verification code for code 1 is \d{6}/);
  });

  test("disallow reuse? no -> no DISALLOW_REUSE line; window? no -> no WINDOW_SIZE; rate limit? no -> none", (t) => {
    if (!ready(t)) return;
    const r = enrollAt(t, [
      [Q.mode, "y"],
      [Q.code, "-1"],
      [Q.update, "y"],
      [Q.reuse, "n"],
      [Q.window, "n"],
      [Q.rate, "n"],
    ]);
    assert.equal(r.failedStep, null, r.output);
    assert.match(r.text!, /^[A-Z2-7]{32}\n" TOTP_AUTH\n(\d{8}\n){5}$/);
  });

  test("an answer other than y/n asks the same question again", (t) => {
    if (!ready(t)) return;
    const r = enrollAt(t, [
      [Q.mode, "maybe"],
      ["\\n(?=Do you want authentication tokens to be time-based \\(y/n\\) )", ""],
      [Q.mode, "Yes"],
      [Q.code, "-1"],
      [Q.update, "y"],
      [Q.reuse, "y"],
      [Q.window, "n"],
      [Q.rate, "y"],
    ]);
    assert.equal(r.failedStep, null, r.output);
    assert.equal(r.exit, 0, r.output);
    assert.match(r.text!, /TOTP_AUTH/);
  });

  test("update the file? no -> nothing is written, exit 0", (t) => {
    if (!ready(t)) return;
    const r = enrollAt(t, [
      [Q.mode, "y"],
      [Q.code, "-1"],
      [Q.update, "n"],
    ]);
    assert.equal(r.failedStep, null, r.output);
    assert.equal(r.exit, 0);
    assert.match(r.output, /Nothing was written/);
    assert.equal(r.text, null);
  });

  test("a wrong confirmation code is refused and asked again; the right one is confirmed", (t) => {
    if (!ready(t)) return;
    const dir = tempDir(t);
    const path = join(dir, "ga");
    // The secret is only known once it is shown: read it from the screen, then type its code.
    const steps: [string, string][] = [
      [Q.mode, "y"],
      [Q.code, "000000"],
      ["Code incorrect[^\\n]*\\n" + Q.code, "12ab"],
      ["Please type the 6-digit code[^\\n]*\\n" + Q.code, "__CODE__"],
      ["Code confirmed", ""],
      [Q.update, "y"],
      [Q.reuse, "y"],
      [Q.window, "n"],
      [Q.rate, "y"],
    ];
    const r = ptyDriveWithSecret(steps, [process.execPath, CLI, "enroll", "-s", path, "-Q", "NONE"]);
    assert.equal(r.failedStep, null, r.output);
    assert.equal(r.exit, 0, r.output);
    assert.doesNotMatch(r.output, /correct code \d{6}/, "the correct code is never shown (the reference leaks it)");
    assert.ok(existsSync(path));
  });

  for (const [how, key] of [
    ["Ctrl-C", "^C"],
    ["end of input (Ctrl-D)", "^D"],
  ] as const) {
    test(`an interrupted dialog (${how}) leaves no file`, (t) => {
      if (!ready(t)) return;
      const r = enrollAt(t, [
        [Q.mode, "y"],
        [Q.code, "-1"],
        [Q.update, "y"],
        [Q.reuse, key],
      ]);
      assert.equal(r.failedStep, null, r.output);
      assert.notEqual(r.exit, 0);
      assert.equal(r.text, null);
      assert.deepEqual(readdirSync(join(r.path, "..")), [], "no temp file either");
    });
  }
});

/** Like ptyDrive, but "__CODE__" is replaced by the TOTP code of the secret shown on screen. */
function ptyDriveWithSecret(steps: [string, string][], argv: string[]) {
  const script = `
import json, os, pty, re, select, subprocess, sys, time
steps = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""; pos = 0; failed = None
def more(t):
    global out
    r, _, _ = select.select([fd], [], [], t)
    if not r: return False
    try: d = os.read(fd, 4096)
    except OSError: return None
    if not d: return None
    out += d; return True
for i, (pat, ans) in enumerate(steps):
    rx = re.compile(pat.encode(), re.S); end = time.time() + 15
    while True:
        m = rx.search(out, pos)
        if m: pos = m.end(); break
        if time.time() > end or more(0.2) is None: failed = i; break
    if failed is not None: break
    if ans == "__CODE__":
        secret = re.search(rb"Your new secret key is: ([A-Z2-7 ]+)", out).group(1).replace(b" ", b"").decode()
        ans = subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True, text=True).stdout.strip()
    if ans != "": os.write(fd, ans.encode() + b"\\r")
end = time.time() + 15
while time.time() < end and more(0.2) is not None: pass
_, st = os.waitpid(pid, 0)
print(json.dumps({"exit": os.WEXITSTATUS(st) if os.WIFEXITED(st) else -os.WTERMSIG(st), "output": out.decode("utf-8", "replace"), "failed_step": failed}))
`;
  const r = spawnSync("/usr/bin/python3", ["-c", script, JSON.stringify(steps), ...argv], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", TERM: "dumb" } });
  const o = JSON.parse(r.stdout) as { exit: number; output: string; failed_step: number | null };
  return { exit: o.exit, output: o.output, failedStep: o.failed_step };
}

describe("otpgate enroll refuses bad input, exits 2 and writes nothing", () => {
  test("existing file without -f, unwritable directory, unknown user, bad flag values", (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    const existing = join(dir, "existing");
    writeFileSync(existing, "OLD\n", { mode: 0o400 });
    const locked = join(dir, "locked");
    mkdirSync(locked, { mode: 0o555 });
    chmodSync(locked, 0o555);
    const user = throwawayUser(t);
    const lockedHome = join(user.home, "ro");
    mkdirSync(lockedHome, { mode: 0o755 });
    const cases: [string[], RegExp][] = [
      [["-s", existing, "-t", "-d", "-W", "-u"], /root is already enrolled \(.*existing exists\); pass -f\/--force to replace it/],
      [["--user", user.name, "-s", join(lockedHome, "ga"), "-t", "-d", "-W", "-u"], new RegExp(`${user.name} cannot write to ${lockedHome} \\(EACCES\\)`)],
      [["-s", join(dir, "missing-dir", "ga"), "-t", "-d", "-W", "-u"], /the directory .*missing-dir does not exist/],
      [["--user", "no-such-user-otpgate", "-t"], /no such user "no-such-user-otpgate"/],
      [["-s", join(dir, "a"), "-r", "0", "-R", "30"], /-r requires an argument in the range 1\.\.10/],
      [["-s", join(dir, "a"), "-t", "-w", "1"], /-w 1: a time-based window below 3/],
      [["-s", join(dir, "a"), "-e", "99"], /-e requires an argument in the range 0\.\.10/],
      [["-s", join(dir, "a"), "-S", "7"], /-S 7: authenticator apps make a new code every 30 seconds/],
    ];
    for (const [args, message] of cases) {
      const r = runCli(["enroll", ...args]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.equal(readFileSync(existing, "latin1"), "OLD\n");
    assert.deepEqual(readdirSync(dir).sort(), ["existing", "locked"]);
    assert.deepEqual(readdirSync(locked), []);
    assert.deepEqual(readdirSync(lockedHome), []);
    const other = runCli(["enroll", "--user", "root", "-t"], { uid: user.uid, gid: user.gid });
    assert.equal(other.status, 2);
    assert.match(other.stderr, /only root can act on another user's account/);
  });

  test("-f replaces an existing enrollment; the old secret stops working", (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const dir = tempDir(t);
    const path = join(dir, "ga");
    assert.equal(runCli(["enroll", "-s", path, "-t", "-D", "-W", "-u", "-q"]).status, 0);
    const old = firstLine(path);
    const r = runCli(["enroll", "-s", path, "-t", "-D", "-W", "-u", "-q", "-f"]);
    assert.equal(r.status, 0, r.stderr);
    assert.notEqual(firstLine(path), old);
    assert.equal(runCli(["verify", "-s", path, oathTotp(old)]).status, 1);
    assert.equal(runCli(["verify", "-s", path, oathTotp(firstLine(path))]).status, 0);
  });
});
