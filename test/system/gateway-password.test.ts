// The gateway's optional password factor: otpgate passwd (terminal without echo, or stdin) writes
// argon2id hashes that an independent implementation (argon2-cffi, on libargon2) accepts and the
// other way round; the login needs user + password + code, and a wrong password costs no code.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { gatewayStateDir, login, loginForm, startGateway } from "../helpers/gateway.js";
import { CLI, enrolledUser, oathTotp, ptyDrive, runCli, systemReady, tempDir } from "../helpers/system.js";

function pyArgon2(script: string, ...args: string[]): string {
  const r = spawnSync("/usr/bin/python3", ["-c", `import argon2, sys\nph = argon2.PasswordHasher()\n${script}`, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python argon2 failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe("otpgate passwd", () => {
  test("stdin and terminal (no echo, asked twice); hashes interoperate with argon2-cffi; file 0600", (t) => {
    if (!systemReady(t, ["python3-argon2", "python3"])) return;
    const file = join(tempDir(t), "etc", "passwords");
    const piped = runCli(["passwd", "root", "--file", file], { input: "correct horse battery\n" });
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stderr.trim(), `password set for root in ${file}`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const hash = readFileSync(file, "utf8").trim().split(":").slice(1).join(":");
    assert.match(hash, /^\$argon2id\$v=19\$m=65536,t=3,p=4\$/);
    assert.equal(pyArgon2("print(ph.verify(sys.argv[1], 'correct horse battery'))", hash), "True", "argon2-cffi accepts otpgate's hash");
    assert.equal(pyArgon2("try:\n  ph.verify(sys.argv[1], 'wrong horse battery')\n  print('accepted')\nexcept argon2.exceptions.VerifyMismatchError:\n  print('refused')", hash), "refused");
    assert.doesNotMatch(readFileSync(file, "utf8"), /correct horse/);

    const typed = ptyDrive(
      [
        ["New password: ", "tty password 123"],
        ["Retype new password: ", "tty password 123"],
      ],
      [process.execPath, CLI, "passwd", "daemon", "--file", file],
    );
    assert.equal(typed.exit, 0, typed.output);
    assert.doesNotMatch(typed.output, /tty password/, "nothing echoed");
    const differ = ptyDrive(
      [
        ["New password: ", "tty password 123"],
        ["Retype new password: ", "tty password 124"],
      ],
      [process.execPath, CLI, "passwd", "daemon", "--file", file],
    );
    assert.equal(differ.exit, 1);
    assert.match(differ.output, /the two passwords differ; nothing was changed/);
    const cancelled = ptyDrive([["New password: ", "^C"]], [process.execPath, CLI, "passwd", "daemon", "--file", file]);
    assert.equal(cancelled.exit, 1);
    assert.match(cancelled.output, /cancelled; nothing was changed/);
    const daemonHash = readFileSync(file, "utf8")
      .split("\n")
      .find((l) => l.startsWith("daemon:"))!
      .slice("daemon:".length);
    assert.equal(pyArgon2("print(ph.verify(sys.argv[1], 'tty password 123'))", daemonHash), "True", "the first, confirmed password stayed");
  });

  test("bad input: short, multi-line, bad names, unusable files; each with its message and the file unchanged", (t) => {
    if (!systemReady(t, ["python3"])) return;
    const dir = tempDir(t);
    const file = join(dir, "passwords");
    assert.equal(runCli(["passwd", "root", "--file", file], { input: "first password 1\n" }).status, 0);
    const before = readFileSync(file, "utf8");
    const cases: [string[], string, number, RegExp][] = [
      [["passwd", "root", "--file", file], "short\n", 1, /at least 10 characters; nothing was changed/],
      [["passwd", "root", "--file", file], "line one is long\nline two\n", 2, /must be one line/],
      [["passwd", "../root", "--file", file], "long enough pw\n", 2, /the user name "\.\.\/root" cannot be used: it contains "\/"/],
      [["passwd", "alice:x", "--file", file], "long enough pw\n", 2, /cannot be used: it contains ":"/],
      [["passwd", "--file", file], "long enough pw\n", 2, /exactly one user name/],
      [["passwd", "nobody-here", "--file", file, "--delete"], "", 2, /nobody-here has no password in/],
      [["passwd", "root", "--file", file, "--config", "/x.yaml"], "", 2, /--file or --config, not both/],
      [["passwd", "root", "--config", join(dir, "missing.yaml")], "", 2, /cannot read .*missing\.yaml/],
    ];
    for (const [args, input, code, message] of cases) {
      const r = runCli(args, { input });
      assert.equal(r.status, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(readFileSync(file, "utf8"), before, `${args.join(" ")} changed nothing`);
    }
    chmodSync(file, 0o644);
    const loose = runCli(["passwd", "root", "--file", file], { input: "long enough pw\n" });
    assert.equal(loose.status, 2);
    assert.match(loose.stderr, /must not be readable or writable by others .*chmod 600/);
    assert.equal(readFileSync(file, "utf8"), before);
    chmodSync(file, 0o600);
    const removed = runCli(["passwd", "root", "--file", file, "--delete"]);
    assert.equal(removed.status, 0, removed.stderr);
    assert.equal(readFileSync(file, "utf8"), "");
  });
});

describe("gateway password factor", () => {
  test("user + password + code; a wrong password costs no code; unknown users and users without a password get the same answer", async (t) => {
    if (!systemReady(t, ["oathtool", "python3-argon2"])) return;
    const dir = tempDir(t);
    // The gateway's own file, in the directory its user owns (startGateway makes it that user's).
    mkdirSync(gatewayStateDir(dir), { mode: 0o700 });
    const file = join(gatewayStateDir(dir), "passwords");
    const { user, secret } = enrolledUser(t);
    const other = enrolledUser(t);
    // A hash made by argon2-cffi (libargon2, its own parameters) works in the gateway.
    writeFileSync(file, `${user.name}:${pyArgon2("print(ph.hash('s3cret pass phrase'))")}\n`, { mode: 0o600 });
    const gw = await startGateway(dir, { public_url: "http://app.test", password_file: file, regulation: { max_retries: 20 } });
    t.after(() => gw.stop());
    const config = gw.configPath;
    const check = runCli(["gateway", "--config", config, "--check-config"]);
    assert.match(check.stdout, /password factor on: 1 password\(s\)/);

    const form = await loginForm(gw);
    assert.match(form.page.body, /<input id="password" name="password" type="password" autocomplete="current-password" required>/);
    const code = oathTotp(secret);
    const wrong = await login(gw, user.name, code, "/", { password: "not the password" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body, /Wrong user name, password or code/);
    const none = await login(gw, user.name, code);
    assert.equal(none.status, 401, "no password at all");
    const ok = await login(gw, user.name, code, "/", { password: "s3cret pass phrase" });
    assert.equal(ok.status, 303, "the same code still works: the wrong password did not use it");
    const replay = await login(gw, user.name, code, "/", { password: "s3cret pass phrase" });
    assert.equal(replay.status, 401);

    const noPassword = await login(gw, other.user.name, oathTotp(other.secret), "/", { password: "s3cret pass phrase" });
    assert.equal(noPassword.status, 401, "enrolled but no password line");
    const unknown = await login(gw, "nosuchuser", "123456", "/", { password: "s3cret pass phrase" });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.replace(/value="[^"]*"/g, ""), noPassword.body.replace(/value="[^"]*"/g, ""), "one answer for every failure");
    await gw.waitForLog(/"reason":"password-no-password"/);
    const log = gw.logs().join("\n");
    assert.match(log, /"reason":"password-wrong"/);
    assert.doesNotMatch(log, /s3cret|not the password/, "never a password in the log");
    assert.doesNotMatch(log, new RegExp(code));

    // otpgate passwd changes apply without a restart.
    assert.equal(runCli(["passwd", other.user.name, "--file", file], { input: "another passphrase\n" }).status, 0);
    assert.equal((await login(gw, other.user.name, oathTotp(other.secret, 1), "/", { password: "another passphrase" })).status, 303);
  });

  test("a password file others can read stops the gateway from starting, with the fix", async (t) => {
    if (!systemReady(t, ["python3"])) return;
    const dir = tempDir(t);
    const file = join(dir, "passwords");
    writeFileSync(file, "", { mode: 0o644 });
    chmodSync(file, 0o644);
    writeFileSync(join(dir, "gw.yaml"), `public_url: http://app.test\npassword_file: ${file}\nkeys_file: ${join(dir, "k")}\n`);
    const r = runCli(["gateway", "--config", join(dir, "gw.yaml"), "--check-config"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /must not be readable or writable by others \(it holds password hashes\): chmod 600/);
    writeFileSync(join(dir, "gw2.yaml"), `public_url: http://app.test\npassword_file: ${join(dir, "none")}\nkeys_file: ${join(dir, "k")}\n`);
    const missing = runCli(["gateway", "--config", join(dir, "gw2.yaml"), "--check-config"]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /does not exist; create it by setting a first password: otpgate passwd USER --file/);
  });
});
