// `otpgate pam require_publickey` against a REAL private sshd with Debian's defaults
// (PasswordAuthentication yes by default, KbdInteractiveAuthentication no): whatever sshd's
// configuration says (not yet reloaded, a Match block, no AuthenticationMethods), the code alone
// is never a password. The stack is pam-integration.md §1.6 variant B, plus a first pam_exec line
// that dumps the environment pam_exec hands to its child, to show SSH_AUTH_INFO_0 arrives.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { privateSshd, type PrivateSshd } from "../helpers/sshd.js";
import { CLI, oathTotp, runCli, syslogListener, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const secretOf = (home: string) => readFileSync(join(home, ".google_authenticator"), "latin1").split("\n")[0]!;

function writeStack(s: PrivateSshd, envLog: string, args: string): void {
  writeFileSync(
    join(s.root, "etc/pam.d", s.service),
    [
      `auth optional pam_exec.so quiet log=${envLog} /usr/bin/env`,
      `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam ${args}`,
      "auth requisite pam_deny.so",
      "auth required pam_permit.so",
      "@include common-account",
      "@include common-session",
      "",
    ].join("\n"),
  );
  s.installPam();
}

async function sshdConfig(s: PrivateSshd, dropIn: string): Promise<void> {
  writeFileSync(join(s.root, "etc/ssh/sshd_config.d/10-test.conf"), dropIn);
  await s.reload();
}

function enroll(user: { name: string; home: string }): string {
  assert.equal(runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-u", "-q"]).status, 0);
  return secretOf(user.home);
}

/** A private sshd, a syslog listener, alice (enrolled) and bob (not enrolled), both with the test key. */
function guardFixture(t: TestContext) {
  const dir = tempDir(t);
  const s = privateSshd(dir);
  t.after(() => s.cleanup());
  const log = syslogListener(t);
  const alice = throwawayUser(t);
  const bob = throwawayUser(t);
  s.authorize(alice);
  s.authorize(bob);
  const secret = enroll(alice);
  return { s, log, envLog: join(dir, "pam-env.log"), alice, bob, secret, stateFile: join(alice.home, ".google_authenticator") };
}

describe("ssh: require_publickey makes the code useless without a completed key step", () => {
  test("password method, kbd-int without a key (Match block), key + code, nullok", { timeout: 240_000 }, async (t: TestContext) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const { s, log, envLog, alice, bob, secret, stateFile } = guardFixture(t);

    // (a) sshd not reloaded yet: Debian's defaults, the "password" method is on. Even the old
    // line (no require_publickey) no longer turns the current code into the SSH password: over
    // SSH a code-only decision always needs the key (see the next test).
    writeStack(s, envLog, `log_socket=${log.socket}`);
    await s.start();
    const old = s.login(alice.name, oathTotp(secret), { password: true, noKey: true });
    assert.equal(old.ok, false, `without require_publickey the code alone is refused too: ${JSON.stringify(old)}`);

    writeStack(s, envLog, `require_publickey log_socket=${log.socket}`);
    const before = readFileSync(stateFile, "latin1");
    const pw = s.login(alice.name, oathTotp(secret, 1), { password: true, noKey: true });
    assert.equal(pw.ok, false, `password method with the right code: refused (${JSON.stringify(pw)})`);
    assert.equal(pw.stage, "password");
    assert.equal(readFileSync(stateFile, "latin1"), before, "refused before the state file was read: nothing changed");
    assert.match(log.lines().at(-1)!, new RegExp(`user=${alice.name} .*result=rejected reason=publickey-required$`));

    // (b) a Match block re-enables keyboard-interactive without a key for this address.
    await sshdConfig(s, "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\nMatch Address 127.0.0.1\n  AuthenticationMethods keyboard-interactive\n");
    const kbd = s.login(alice.name, oathTotp(secret, 1), { noKey: true });
    assert.equal(kbd.ok, false, `kbd-int with the right code but no key: refused (${JSON.stringify(kbd)})`);
    assert.equal(readFileSync(stateFile, "latin1"), before, "the code was not used up");

    // (c) what setup configures: key, then the code.
    await sshdConfig(s, "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n");
    const good = s.login(alice.name, oathTotp(secret, 1));
    assert.equal(good.ok, true, `key + code: accepted (${JSON.stringify(good)})`);
    assert.match(log.lines().at(-1)!, new RegExp(`user=${alice.name} .*result=accepted via=totp$`));
    // pam_exec really hands SSH_AUTH_INFO_0 (sshd's PAM environment) to its child.
    const env = readFileSync(envLog, "utf8");
    assert.match(env, /^SSH_AUTH_INFO_0=publickey ssh-ed25519 AAAA\S+$/m, env);
    assert.match(env, /^SSH_AUTH_INFO_0=$/m, "the password/keyless attempts exported it empty");

    // (d) nullok + require_publickey: an unenrolled user needs the key; the password method is refused.
    writeStack(s, envLog, `require_publickey nullok log_socket=${log.socket}`);
    await sshdConfig(s, "KbdInteractiveAuthentication yes\n");
    const nullPw = s.login(bob.name, "anything at all", { password: true, noKey: true });
    assert.equal(nullPw.ok, false, `nullok, not enrolled, password method: refused (${JSON.stringify(nullPw)})`);
    const nullKbd = s.login(bob.name, "anything", { noKey: true });
    assert.equal(nullKbd.ok, false, "nullok, not enrolled, kbd-int without a key: refused");
    await sshdConfig(s, "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n");
    const nullKey = s.login(bob.name, "anything");
    assert.equal(nullKey.ok, true, `nullok, not enrolled, with the key: let through (${JSON.stringify(nullKey)})`);
    assert.match(log.lines().at(-1)!, new RegExp(`user=${bob.name} .*result=accepted via=nullok`));
  });

  test("a code-only line WITHOUT require_publickey in sshd's service (setup rstudio --service <sshd's>): the code alone is refused, key + code works", { timeout: 240_000 }, async (t: TestContext) => {
    if (!systemReady(t, ["python3", "oathtool"])) return;
    const { s, log, envLog, alice, bob, secret, stateFile } = guardFixture(t);
    const before = readFileSync(stateFile, "latin1");

    // What `setup rstudio --factors code --service <sshd's service>` wrote: a bare code line.
    writeStack(s, envLog, `log_socket=${log.socket}`);
    await s.start();
    const pw = s.login(alice.name, oathTotp(secret), { password: true, noKey: true });
    assert.equal(pw.ok, false, `password method, no key, the right code: refused (${JSON.stringify(pw)})`);
    assert.match(log.lines().at(-1)!, new RegExp(`user=${alice.name} .*result=rejected reason=publickey-required caller=ssh$`));
    assert.equal(readFileSync(stateFile, "latin1"), before, "refused before the state file was read: the code is not used up");
    const env = readFileSync(envLog, "utf8");
    assert.match(env, /^SSH_CONNECTION=127\.0\.0\.1 \d+ 127\.0\.0\.1 \d+$/m, "sshd exports SSH_CONNECTION into the PAM environment");
    assert.match(env, /^PAM_TTY=ssh$/m, "and sets PAM_TTY=ssh");

    // nullok does not change it: an unenrolled user without a key is refused too.
    writeStack(s, envLog, `nullok log_socket=${log.socket}`);
    const nullPw = s.login(bob.name, "anything", { password: true, noKey: true });
    assert.equal(nullPw.ok, false, `nullok, not enrolled, password method: refused (${JSON.stringify(nullPw)})`);

    // With the key first, the same bare line accepts the code.
    writeStack(s, envLog, `log_socket=${log.socket}`);
    await sshdConfig(s, "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n");
    const good = s.login(alice.name, oathTotp(secret));
    assert.equal(good.ok, true, `key + code: accepted (${JSON.stringify(good)})`);
    assert.match(log.lines().at(-1)!, new RegExp(`user=${alice.name} .*result=accepted via=totp$`));

    // \`password\`: the token carries the account's password too, so the code is not alone.
    assert.equal(spawnSync("chpasswd", { input: `${alice.name}:Horse-Battery-9\n` }).status, 0);
    writeStack(s, envLog, `password log_socket=${log.socket}`);
    await sshdConfig(s, "");
    const pwCode = s.login(alice.name, "Horse-Battery-9" + oathTotp(secret, 1), { password: true, noKey: true });
    assert.equal(pwCode.ok, true, `password method, password + code: accepted (${JSON.stringify(pwCode)})`);
    assert.match(log.lines().at(-1)!, new RegExp(`user=${alice.name} .*result=accepted via=totp\\+password$`));
  });
});
