// Pure pieces behind doctor and the root guard: escaping users' text for a terminal, the
// variables that steer node, reading PAM lines (otpgate's command through env) and sshd's
// Include files.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { printable, printableJson, printableLines } from "../../src/core/printable.js";
import { steeringVariables } from "../../src/core/steering-env.js";
import { otpgateCommand, readPamStack } from "../../src/admin/pam-stack.js";
import { sshdConfigFiles } from "../../src/admin/sshd-reload.js";

test("printable: controls, C1, bidi and separators become visible escapes; other text stays", () => {
  const cases: [string, string][] = [
    ["plain ascii", "plain ascii"],
    ["x\x1b[2Jy", "x\\x1b[2Jy"],
    ["a\rb\nc\td", "a\\rb\\nc\\td"],
    ["\x9b31m", "\\x9b31m"],
    ["\x7f", "\\x7f"],
    ["evil\u202etxt.exe", "evil\\u202etxt.exe"],
    ["line\u2028sep", "line\\u2028sep"],
    ["back\\slash", "back\\\\slash"],
    ["Zoë Ünal 日本", "Zoë Ünal 日本"],
    ["\u{F0000}", "\\u{f0000}"],
  ];
  for (const [input, want] of cases) assert.equal(printable(input), want, JSON.stringify(input));
});

test("printableJson: ASCII only, and a JSON parser reads back the same values", () => {
  const value = { file: "/home/u/x\x1b[2J\ry", note: "\x9b Zoë \u202e 😀" };
  const text = printableJson(value);
  assert.match(text, /^[\x20-\x7e]*$/);
  assert.deepEqual(JSON.parse(text), value);
});

test("steering variables: node's loaders and the dynamic loader, by name; harmless ones pass", () => {
  assert.deepEqual(steeringVariables(["PATH", "NODE_OPTIONS", "LD_PRELOAD", "LD_LIBRARY_PATH", "NODE_PATH", "PAM_USER", "SSH_AUTH_INFO_0", "NODE_EXTRA_CA_CERTS", "OPENSSL_CONF", "GCONV_PATH"]), [
    "GCONV_PATH",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "NODE_OPTIONS",
    "NODE_PATH",
    "OPENSSL_CONF",
  ]);
  assert.deepEqual(steeringVariables(["PATH", "PAM_USER", "PAM_RHOST", "LANG"]), []);
});

test("otpgate's pam_exec command: plain, through env -u/-i/--unset=, and lines that are not otpgate's", () => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-pam-"));
  try {
    const file = join(dir, "svc");
    const line = (text: string) => {
      writeFileSync(file, text + "\n");
      return readPamStack(file, dir)[0]!;
    };
    assert.deepEqual(otpgateCommand(line("auth [success=1 ignore=1 default=ignore] pam_exec.so quiet expose_authtok /usr/bin/node /opt/o/dist/otpgate.cjs pam nullok secret=/x")), {
      env: null,
      unset: [],
      node: "/usr/bin/node",
      launcher: "/opt/o/dist/otpgate.cjs",
      options: ["nullok", "secret=/x"],
    });
    const viaEnv = otpgateCommand(
      line("auth required pam_exec.so quiet expose_authtok /usr/bin/env -u NODE_OPTIONS --unset=NODE_PATH -uLD_PRELOAD /usr/bin/node /o/otpgate.cjs pam require_publickey"),
    )!;
    assert.equal(viaEnv.env, "/usr/bin/env");
    assert.deepEqual(viaEnv.unset, ["NODE_OPTIONS", "NODE_PATH", "LD_PRELOAD"]);
    assert.equal(viaEnv.node, "/usr/bin/node");
    assert.deepEqual(viaEnv.options, ["require_publickey"]);
    assert.deepEqual(otpgateCommand(line("auth required pam_exec.so /usr/bin/env -i /usr/bin/node /o/otpgate.cjs pam"))!.unset, ["*"]);
    assert.equal(otpgateCommand(line("auth required pam_exec.so /usr/bin/node /opt/other.cjs pam")), null);
    assert.equal(otpgateCommand(line("auth required pam_unix.so nullok")), null);
    // includes and substacks are expanded, for the asked type only
    writeFileSync(join(dir, "common-auth"), "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\naccount required pam_unix.so\n");
    writeFileSync(file, "@include common-auth\nauth required pam_env.so user_readenv=1\nsession include common-auth\n-auth optional pam_x.so\nauth include missing-file\n");
    const stack = readPamStack(file, dir, "auth");
    assert.deepEqual(
      stack.map((l) => `${l.type} ${l.module}${l.unreadableInclude ? " (unreadable)" : ""}`),
      ["auth pam_unix.so", "auth pam_deny.so", "auth pam_env.so", "auth pam_x.so", "auth  (unreadable)"],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sshd's configuration files: sshd_config and what Include names (globs, relative to /etc/ssh, nested)", () => {
  const root = mkdtempSync(join(tmpdir(), "otpgate-sshd-"));
  try {
    mkdirSync(join(root, "etc/ssh/sshd_config.d"), { recursive: true });
    writeFileSync(join(root, "etc/ssh/sshd_config"), "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n  include extra.conf\n");
    writeFileSync(join(root, "etc/ssh/sshd_config.d/10-a.conf"), "Include /etc/ssh/nested.conf\n");
    writeFileSync(join(root, "etc/ssh/sshd_config.d/ignored.txt"), "");
    writeFileSync(join(root, "etc/ssh/nested.conf"), "");
    writeFileSync(join(root, "etc/ssh/extra.conf"), "");
    const files = sshdConfigFiles(join(root, "etc/ssh/sshd_config"), (p) => join(root, p)).map((p) => p.slice(root.length));
    assert.deepEqual(files, ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/10-a.conf", "/etc/ssh/nested.conf", "/etc/ssh/extra.conf"]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("printableLines keeps our line breaks and escapes everything else on each line", () => {
  assert.equal(printableLines("first\n  - \x1b[2Jsecond\r"), "first\n  - \\x1b[2Jsecond\\r");
});
