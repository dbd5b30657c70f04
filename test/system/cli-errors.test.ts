// Bad input to `otpgate verify`: each case gives its documented exit code and a message that says
// what to do, and the state file is byte-identical afterwards.
import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
const GOOD = `${SECRET}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;

interface Case {
  readonly name: string;
  readonly prepare: (path: string, dir: string) => void;
  readonly args?: (path: string) => string[];
  readonly input?: string;
  readonly exit: number;
  readonly message: RegExp;
  /** Whether the file must be byte-identical afterwards (false for accepted codes). */
  readonly unchanged?: boolean;
}

const write =
  (content: string | Buffer, mode = 0o600) =>
  (path: string) => {
    writeFileSync(path, content, { mode });
    chmodSync(path, mode);
  };

const cases: Case[] = [
  { name: "malformed secret line", prepare: write('not*base32\n" TOTP_AUTH\n'), exit: 2, message: /line 1 is not a base32-encoded secret; fix that line or enroll the user/ },
  { name: "truncated file (only a piece of the secret)", prepare: write(SECRET.slice(0, 15)), exit: 1, message: /no TOTP_AUTH or HOTP_COUNTER line, so only emergency codes work; enroll the user/ },
  { name: "truncated file (one character)", prepare: write("F"), exit: 2, message: /line 1 is not a base32-encoded secret/ },
  { name: "truncated option line", prepare: write(`${SECRET}\n" RATE_LIMIT 3`), exit: 2, message: /RATE_LIMIT must start with a number of attempts/ },
  { name: "binary junk", prepare: write(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01, 0xff])), exit: 2, message: /contains NUL bytes \(binary data\)/ },
  { name: "binary junk without NUL", prepare: write(Buffer.from([0xff, 0xfe, 0x0a, 0x80])), exit: 2, message: /line 1 is not a base32-encoded secret/ },
  { name: "a 2 MB file", prepare: write(Buffer.alloc(2 * 1024 * 1024, 0x41)), exit: 2, message: /is 2097152 bytes; a state file is at most 65536 bytes/ },
  {
    name: "a symlink",
    prepare: (path, dir) => {
      write(GOOD)(join(dir, "target"));
      symlinkSync(join(dir, "target"), path);
    },
    exit: 2,
    message: /is a symbolic link; otpgate never follows or replaces symlinks/,
  },
  { name: "a world-readable file", prepare: write(GOOD, 0o644), exit: 2, message: /permissions 0644, more permissive than 0600: .*run chmod 600/ },
  {
    name: "the wrong owner",
    prepare: (path) => {
      write(GOOD)(path);
      chownSync(path, 65534, 65534);
    },
    exit: 2,
    message: /must be owned by root \(uid 0\), not uid 65534: run chown root/,
  },
  { name: "a directory", prepare: (path) => mkdirSync(path), exit: 2, message: /is a directory; the state file must be a regular file/ },
  { name: "a non-digit code", prepare: write(GOOD), args: (p) => ["verify", "-s", p, "12a456"], exit: 2, message: /the code must contain digits only/ },
  { name: "a 20-digit code", prepare: write(GOOD), args: (p) => ["verify", "-s", p, "12345678901234567890"], exit: 2, message: /the code has 20 digits; expected 6/ },
  { name: "empty stdin", prepare: write(GOOD), args: (p) => ["verify", "-s", p], input: "", exit: 2, message: /no code given: pass it as an argument or on standard input/ },
  { name: "stdin with only a newline", prepare: write(GOOD), args: (p) => ["verify", "-s", p], input: "\n", exit: 2, message: /no code given/ },
  { name: "an unknown flag", prepare: write(GOOD), args: (p) => ["verify", "-s", p, "--frobnicate", "123456"], exit: 2, message: /Unknown option '--frobnicate'; see otpgate verify --help/ },
  { name: "two codes", prepare: write(GOOD), args: (p) => ["verify", "-s", p, "123456", "654321"], exit: 2, message: /give at most one code/ },
  { name: "a bad --allowed-perm", prepare: write(GOOD), args: (p) => ["verify", "-s", p, "--allowed-perm", "9", "123456"], exit: 2, message: /--allowed-perm must be a non-zero octal permission/ },
  { name: "an unknown user", prepare: write(GOOD), args: () => ["verify", "--user", "no-such-user-otpgate", "123456"], exit: 2, message: /no such user "no-such-user-otpgate"/ },
  { name: "an invalid setting", prepare: write(`${SECRET}\n" STEP_SIZE 90\n" TOTP_AUTH\n`), exit: 2, message: /STEP_SIZE must be a whole number from 1 to 60, not "90"/ },
  { name: "a missing file", prepare: () => {}, exit: 1, message: /root is not enrolled \(no .*\); enroll the user with otpgate enroll/ },
];

test("bad input: documented exit code, clear message, file unchanged", async (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  for (const c of cases) {
    await t.test(c.name, () => {
      const dir = tempDir(t);
      const path = join(dir, "ga");
      c.prepare(path, dir);
      const before = existsSync(path) && lstatSync(path).isFile() ? readFileSync(path) : null;
      const args = c.args ? c.args(path) : ["verify", "-s", path, oathTotp(SECRET)];
      const r = runCli(args, { input: c.input ?? "" });
      assert.equal(r.status, c.exit, `${c.name}: stderr ${r.stderr}`);
      assert.match(r.stderr, c.message);
      assert.equal(r.stderr.trim().split("\n").length, 1, "one line on stderr");
      assert.doesNotMatch(r.stderr + r.stdout, new RegExp(SECRET.slice(0, 12)), "never prints the secret");
      if (before && c.unchanged !== false) assert.deepEqual(readFileSync(path), before, `${c.name}: the file is byte-identical`);
    });
  }
});

test("a CRLF file works: the code is accepted and only the rewritten lines get plain LF", (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const dir = tempDir(t);
  const path = join(dir, "ga");
  writeFileSync(path, GOOD.replace(/\n/g, "\r\n"), { mode: 0o400 });
  const r = runCli(["verify", "-s", path, "--json", oathTotp(SECRET)]);
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(json.result, "accepted");
  assert.equal(json.via, "totp");
  assert.doesNotMatch(r.stdout, /\b\d{6}\b(?!")/, "no code in the JSON");
  const text = readFileSync(path, "latin1");
  assert.match(text, /^FJZ\S+\r\n" RATE_LIMIT 3 30 \d+\n" DISALLOW_REUSE \d+\n" TOTP_AUTH\r\n12345678\r\n$/);
});

test("the code can come from standard input, and --help documents every flag", (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const dir = tempDir(t);
  const path = join(dir, "ga");
  writeFileSync(path, GOOD, { mode: 0o400 });
  const r = runCli(["verify", "-s", path], { input: oathTotp(SECRET) + "\n" });
  assert.equal(r.status, 0, r.stderr);
  const help = runCli(["verify", "--help"]);
  assert.equal(help.status, 0);
  for (const flag of ["--secret", "--user", "--json", "--no-skew-adjust", "--no-increment-hotp", "--no-strict-owner", "--allowed-perm", "--help"]) {
    assert.match(help.stdout, new RegExp(flag));
  }
  const top = runCli(["--help"]);
  assert.match(top.stdout, /verify/);
  assert.equal(runCli(["nonsense"]).status, 2);
});

test("an update that cannot be written refuses the login (exit 2) and leaves the file as it was", (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const user = throwawayUser(t);
  const dir = join(user.home, "locked");
  mkdirSync(dir, { mode: 0o755 });
  const path = join(dir, "ga");
  writeFileSync(path, GOOD, { mode: 0o400 });
  chownSync(path, user.uid, user.gid);
  const r = runCli(["verify", "--user", user.name, "-s", path, oathTotp(SECRET)]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /could not update .* \(EACCES\); the file was left as it was: check free space and that .* is writable by the file's owner/);
  assert.equal(readFileSync(path, "latin1"), GOOD);
});
