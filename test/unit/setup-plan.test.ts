// What setup writes, checked without a running system: PAM's tokenizer and quoting, the clean-env
// command, the systemd unit's ExecStart (parsed back per systemd's rules), the publickey check for
// the RADIUS stack, Match criteria → test connections, relative Includes, the rstudio --nullok
// refusal, and rollback's refusal to discard later edits.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { applyChanges, rollback, SetupError } from "../../src/admin/setup/apply.js";
import { cleanNodeCommand, MAX_PAM_LINE, otpgateCommandOf, pamExecArgv, pamLine, pamWord, tokenizePamLine, UNSAFE_ENV } from "../../src/admin/setup/pam-line.js";
import { rstudioOptionProblem } from "../../src/admin/setup/setup-rstudio.js";
import { planSsh, PUBLICKEY_CHECK } from "../../src/admin/setup/setup-ssh.js";
import { radiusUnit, systemdWord } from "../../src/admin/setup/systemd-unit.js";
import { connectionsFor, findMatchBlocks, resolveInclude, type Connection } from "../../src/admin/sshd-effective.js";
import { parseExecStart } from "../helpers/systemd-exec.js";

test("tokenizePamLine splits like libpam: blanks, [ ] words with \\] inside, '#' starts a comment", () => {
  const cases: [string, string[]][] = [
    ["auth required pam_unix.so", ["auth", "required", "pam_unix.so"]],
    ["auth\t[success=1 default=ignore]  pam_exec.so a  b", ["auth", "success=1 default=ignore", "pam_exec.so", "a", "b"]],
    ["auth required x.so [a b\\]c] d", ["auth", "required", "x.so", "a b]c", "d"]],
    ["auth required x.so [a]b", ["auth", "required", "x.so", "a", "b"]],
    ["auth required x.so secret=/a#b c", ["auth", "required", "x.so", "secret=/a"]],
    ["auth required x.so [unterminated word", ["auth", "required", "x.so", "unterminated word"]],
    ["# comment", []],
    ["   ", []],
  ];
  for (const [line, words] of cases) assert.deepEqual(tokenizePamLine(line), words, line);
});

test("pamWord: plain words stay, blanks and a leading [ are bracketed, ] escaped; every one parses back", () => {
  assert.equal(pamWord("secret=/var/lib/x/${USER}"), "secret=/var/lib/x/${USER}");
  assert.equal(pamWord("secret=/state dir/${USER}"), "[secret=/state dir/${USER}]");
  assert.equal(pamWord("[x]"), "[[x\\]]");
  for (const w of ["a b", "a]b", "[a", "x] y", "tab\there", "a[b]c d", "]]", "$%&'\"`;|<>"]) {
    assert.deepEqual(tokenizePamLine(`auth required m.so ${pamWord(w)} next`).slice(3), [w, "next"], w);
  }
});

test("pamWord refuses what PAM would cut or mangle: '#', '\\', control characters, empty; the message names the option", () => {
  assert.throws(() => pamWord(""), /cannot be written into a PAM line/);
  for (const w of ["a#b", "a\\b", "a\\", "line\nbreak", "nul\0", "cr\rx"]) {
    assert.throws(
      () => pamWord(`secret=${w}`, "--secret"),
      (e: unknown) => e instanceof SetupError && /--secret .*cannot be written into a PAM line/s.test(e.message),
      JSON.stringify(w),
    );
  }
});

test("pamLine parses its own line back to the intended words and refuses lines Linux-PAM 1.5 could not read", () => {
  const words = ["auth", "success=1 ignore=1 default=ignore", "pam_exec.so", "quiet", "/usr/bin/node", "/opt/o.cjs", "pam", "secret=/a b/${USER}"];
  const line = pamLine(words);
  assert.equal(line, "auth     [success=1 ignore=1 default=ignore] pam_exec.so quiet /usr/bin/node /opt/o.cjs pam [secret=/a b/${USER}]");
  assert.deepEqual(tokenizePamLine(line), words);
  assert.equal(pamLine(["auth", "requisite", "pam_deny.so"]), "auth     requisite pam_deny.so");
  assert.throws(() => pamLine(["auth", "required", "x.so", "a".repeat(MAX_PAM_LINE)]), /Linux-PAM 1\.5 rejects the whole service file/);
});

test("the otpgate command removes the steering variables, fixes PATH, and is found again behind env", () => {
  const argv = cleanNodeCommand("/usr/bin/node", "/usr/lib/node_modules/otpgate/dist/otpgate.cjs", ["pam", "require_publickey"]);
  assert.equal(argv[0], "/usr/bin/env");
  for (const v of [
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "NODE_REDIRECT_WARNINGS",
    "NODE_V8_COVERAGE",
    "NODE_ICU_DATA",
    "NODE_CHANNEL_FD",
    "UV_THREADPOOL_SIZE",
    "OPENSSL_CONF",
    "OPENSSL_MODULES",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
  ]) {
    assert.ok(UNSAFE_ENV.includes(v), v);
    assert.equal(argv[argv.indexOf(v) - 1], "-u", v);
  }
  assert.ok(argv.includes("PATH=/usr/sbin:/usr/bin:/sbin:/bin"));
  assert.deepEqual(otpgateCommandOf(argv), { node: "/usr/bin/node", otpgate: "/usr/lib/node_modules/otpgate/dist/otpgate.cjs", args: ["pam", "require_publickey"] });
  assert.deepEqual(otpgateCommandOf(["/usr/bin/node", "/x.cjs", "pam"]), { node: "/usr/bin/node", otpgate: "/x.cjs", args: ["pam"] });
  assert.deepEqual(pamExecArgv(["quiet", "expose_authtok", ...argv]), argv);
  assert.throws(() => cleanNodeCommand("/opt/a=b/node", "/x.cjs", []), /read as a variable assignment/);
  // The whole line, with real-length paths, stays within what Linux-PAM 1.5 reads.
  const line = pamLine([
    "auth",
    "success=1 ignore=1 default=ignore",
    "pam_exec.so",
    "quiet",
    "quiet_log",
    "expose_authtok",
    ...cleanNodeCommand("/usr/local/lib/nodejs/node-v20.20.2-linux-x64/bin/node", "/usr/local/lib/node_modules/otpgate/dist/otpgate.cjs", [
      "pam",
      "require_publickey",
      "secret=/var/lib/otpgate/${USER}/google_authenticator",
      "nullok",
      "password",
      "noskewadj",
    ]),
  ]);
  assert.ok(line.length < MAX_PAM_LINE, String(line.length));
});

test("systemd unit: each ExecStart word comes back byte for byte through systemd's specifier, quoting and $ rules", () => {
  const args = ["radius", "--state", "/var/lib/otpgate/${USER}", "--x", "100% $HOME $$ a\\b \"q\" 'single'", "two words"];
  const unit = radiusUnit("/usr/bin/node", "/opt/otp gate/otpgate.cjs", args);
  const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!;
  assert.deepEqual(parseExecStart(exec, { USER: "root", HOME: "/root" }), ["/usr/bin/node", "/opt/otp gate/otpgate.cjs", ...args]);
  assert.match(unit, /^UnsetEnvironment=NODE_OPTIONS .*LD_PRELOAD/m);
  assert.equal(systemdWord("%i"), '"%%i"');
  assert.throws(() => systemdWord("a\nb"), /control character/);
  // The old writer's output, for contrast: systemd would have expanded ${USER} itself.
  assert.deepEqual(parseExecStart("/usr/bin/node /o.cjs radius --state /var/lib/${USER}", { USER: "" }), ["/usr/bin/node", "/o.cjs", "radius", "--state", "/var/lib/"]);
});

test("the RADIUS stack's publickey check: passes only when a line of SSH_AUTH_INFO_0 starts with 'publickey '", () => {
  const run = (info: string | undefined) => spawnSync("/bin/sh", ["-c", PUBLICKEY_CHECK], { env: info === undefined ? {} : { SSH_AUTH_INFO_0: info } }).status;
  assert.equal(run("publickey ssh-ed25519 AAAAC3Nz\n"), 0);
  assert.equal(run("password\npublickey ssh-ed25519 AAAA\n"), 0);
  for (const info of [undefined, "", "password\n", "keyboard-interactive\n", "xpublickey ssh-ed25519 AAAA\n", "password publickey x\n", "publickey", "hostbased ssh-ed25519 AAAA\n"]) {
    assert.equal(run(info), 1, JSON.stringify(info));
  }
  assert.doesNotMatch(PUBLICKEY_CHECK, /[#\\]/, "PAM would cut or mangle it");
  assert.deepEqual(tokenizePamLine(pamLine(["auth", "requisite", "pam_exec.so", "/bin/sh", "-c", PUBLICKEY_CHECK])).slice(3), ["/bin/sh", "-c", PUBLICKEY_CHECK]);
});

const BASE: Connection = { user: "admin", host: "localhost", addr: "127.0.0.1", laddr: "127.0.0.1", lport: "22" };
const groups = { memberOf: (p: string) => (p === "wheel" ? "alice" : null), groupsOf: (u: string) => (u === "alice" ? ["alice", "wheel"] : [u]) };

test("connectionsFor: a connection that satisfies each Match line, one per alternative", () => {
  assert.deepEqual(connectionsFor("Address 10.20.0.0/16", BASE, groups).connections, [{ ...BASE, addr: "10.20.0.1" }]);
  assert.deepEqual(connectionsFor("Address 192.168.*", BASE, groups).connections, [{ ...BASE, addr: "192.168.1.1" }]);
  assert.deepEqual(connectionsFor("User bob,carol", BASE, groups).connections, [
    { ...BASE, user: "bob" },
    { ...BASE, user: "carol" },
  ]);
  assert.deepEqual(connectionsFor("Group wheel Address 10.0.0.0/8", BASE, groups).connections, [{ ...BASE, user: "alice", addr: "10.0.0.1" }]);
  assert.deepEqual(connectionsFor("LocalPort 2222", BASE, groups).connections, [{ ...BASE, lport: "2222" }]);
  assert.deepEqual(connectionsFor("LocalAddress 10.1.2.3 Host *.example.com", BASE, groups).connections, [{ ...BASE, laddr: "10.1.2.3", host: "x.example.com" }]);
  assert.deepEqual(connectionsFor("User !root", BASE, groups), { connections: [], untestable: null }, "negations alone match no connection (sshd -T agrees)");
  assert.deepEqual(connectionsFor("User zz*,!zzx", BASE, groups).connections, [{ ...BASE, user: "zzotpgate-probe" }], "the sample is not the negated name");
  assert.deepEqual(connectionsFor("Address 10.0.0.0/8,!10.0.0.0/24", BASE, groups).connections, [{ ...BASE, addr: "10.255.255.254" }]);
  assert.deepEqual(connectionsFor("Group wheel,!alice", BASE, groups).connections, [], "alice is in the negated group");
  assert.deepEqual(connectionsFor("All", BASE, groups).connections, [BASE]);
  assert.match(connectionsFor("Group nobodyhere", BASE, groups).untestable ?? "", /no Group matching "nobodyhere" can be found.*LDAP/, "no listed member: untestable, not skipped");
  assert.match(connectionsFor("Exec /bin/true", BASE, groups).untestable ?? "", /Exec cannot be evaluated/);
});

test("Match blocks are found in Includes, relative ones resolved against /etc/ssh like sshd does", () => {
  const root = mkdtempSync(join(tmpdir(), "otpgate-unit-"));
  try {
    mkdirSync(join(root, "etc/ssh/sshd_config.d"), { recursive: true });
    writeFileSync(join(root, "etc/ssh/sshd_config"), "Include sshd_config.d/*.conf\nPort 22\nMatch User bob # a comment\n  PasswordAuthentication yes\n");
    writeFileSync(join(root, "etc/ssh/sshd_config.d/50-site.conf"), "Match Address 10.0.0.0/8\n  AuthenticationMethods publickey\n");
    writeFileSync(join(root, "etc/ssh/sshd_config.d/60-other.conf"), "Match=Group wheel\n");
    assert.equal(resolveInclude(root, "sshd_config.d/*.conf"), join(root, "etc/ssh/sshd_config.d/*.conf"));
    assert.equal(resolveInclude(root, join(root, "etc/ssh/x")), join(root, "etc/ssh/x"), "already inside --root");
    assert.equal(resolveInclude("/", "x.conf"), "/etc/ssh/x.conf");
    const blocks = findMatchBlocks(root, join(root, "etc/ssh/sshd_config"));
    assert.deepEqual(
      blocks.map((b) => [b.criteria, b.line]),
      [
        ["Address 10.0.0.0/8", 1],
        ["Group wheel", 1],
        ["User bob", 3],
      ],
    );

    // setup puts its drop-in where sshd reads it, not in a directory named after the relative path
    const changes = planSsh({
      root,
      service: "sshd",
      factors: "key+code",
      hint: true,
      nullok: false,
      node: "/usr/bin/node",
      otpgate: "/o.cjs",
      sshd: "/usr/sbin/sshd",
      backend: "pam_exec",
      radiusPort: 1812,
    });
    assert.ok(
      changes.some((c) => c.path === join(root, "etc/ssh/sshd_config.d/10-otpgate.conf")),
      changes.map((c) => c.path).join(" "),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("rstudio: --nullok with factors code is refused (nothing else would authenticate); password+code keeps it", () => {
  assert.match(rstudioOptionProblem({ factors: "code", nullok: true }) ?? "", /would get in with any password/);
  assert.equal(rstudioOptionProblem({ factors: "code", nullok: false }), null);
  assert.equal(rstudioOptionProblem({ factors: "password+code", nullok: true }), null);
});

test("rollback refuses to discard a file edited after setup (naming it), changes nothing, and --force restores", () => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-unit-"));
  try {
    const a = join(dir, "a.conf");
    const b = join(dir, "b.conf");
    const manifest = join(dir, "manifest.json");
    writeFileSync(a, "original a\n");
    const now = new Date(Date.UTC(2026, 11, 1, 12, 0, 0));
    applyChanges(
      [
        { path: a, next: "setup a\n" },
        { path: b, next: "setup b\n" },
      ],
      { manifest, now, validate: () => null },
    );
    applyChanges([{ path: a, next: "setup a, second run\n" }], { manifest, now, validate: () => null });
    writeFileSync(b, "setup b\nadmin's line\n");
    assert.throws(
      () => rollback(manifest),
      (e: unknown) => e instanceof SetupError && e.message.includes(`${b} changed since otpgate setup wrote it`) && !e.message.includes(`${a} changed`) && /--force/.test(e.message),
    );
    assert.equal(readFileSync(a, "utf8"), "setup a, second run\n", "nothing restored");
    assert.equal(readFileSync(b, "utf8"), "setup b\nadmin's line\n");
    assert.ok(existsSync(manifest));
    assert.deepEqual(rollback(manifest, { force: true }), [a, b]);
    assert.equal(readFileSync(a, "utf8"), "original a\n");
    assert.equal(existsSync(b), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
