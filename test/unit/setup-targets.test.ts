// Setup's targets without a running system: the rstudio helper's options (F9), the insertion point
// and the final-stack check of otpgate's block (F6), Match samples that respect negations (F4).
import assert from "node:assert/strict";
import { test } from "node:test";
import { helperScript } from "../../src/admin/setup/setup-rstudio.js";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyChanges, pendingChanges, SetupError } from "../../src/admin/setup/apply.js";
import { authBlock, authOrderProblem, planPamService, withoutOtpgate } from "../../src/admin/setup/plan.js";
import { readIfExists } from "../../src/admin/setup/paths.js";
import { foreignTargetProblem } from "../../src/admin/setup/targets.js";
import { pamLineSecret } from "../../src/admin/setup/written.js";
import { bypassBefore, pamStackOfText } from "../../src/admin/pam-stack.js";
import { globRegExp } from "../../src/admin/sshd-effective.js";

const base = {
  root: "/",
  service: "rstudio",
  factors: "password+code" as const,
  nullok: false,
  node: "/usr/bin/node",
  otpgate: "/opt/otpgate.cjs",
  rserverPam: "/usr/lib/rstudio-server/bin/rserver-pam",
};

test("F9: the rstudio helper runs with --noskewadj by default; --skew-adjust drops it", () => {
  assert.match(helperScript(base), / '--noskewadj' /);
  assert.doesNotMatch(helperScript({ ...base, skewAdjust: true }), /noskewadj/);
});

const withDir = (f: (dir: string) => void) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-unit-"));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
const block = authBlock({ node: "/usr/bin/node", otpgate: "/opt/otpgate.cjs", pamArgs: ["noskewadj"], hint: null }, "test");
const TAIL = { replacePassword: true, tail: ["@include common-account"] };

test("F6: the block goes before the first auth rule in any spelling (-auth, auth include, any @include)", () => {
  for (const first of ["-auth sufficient pam_krb5.so minimum_uid=1000", "auth include my-krb", "auth\tsubstack my-krb", "@include my-krb", "AUTH sufficient pam_permit.so"]) {
    const out = planPamService(`# site\n${first}\n@include common-auth\naccount required pam_nologin.so\n`, block, TAIL).split("\n");
    assert.ok(out.indexOf(block[0]!) < out.indexOf(first), `${first}:\n${out.join("\n")}`);
    assert.equal(out[0], "# site");
  }
});

test("F6: the written stack is parsed back; a rule before otpgate's line that can end it or jump over it is refused", () => {
  withDir((dir) => {
    writeFileSync(join(dir, "krb"), "auth [success=done default=ignore] pam_permit.so\n");
    const otp = block.filter((l) => l.startsWith("auth")).join("\n");
    const cases: [string, boolean][] = [
      [`${otp}\n-auth sufficient pam_permit.so\n`, false],
      [`-auth sufficient pam_permit.so\n${otp}\n`, true],
      [`@include krb\n${otp}\n`, true],
      [`auth [success=ok default=3] pam_unix.so\n${otp}\n`, true], // a failure jumps past the code check
      [`auth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\n${otp}\n`, false], // lands on requisite pam_deny
      [`auth required pam_env.so\n${otp}\n`, false],
    ];
    for (const [text, refused] of cases) {
      writeFileSync(join(dir, "svc"), text);
      assert.equal(authOrderProblem(join(dir, "svc")) !== null, refused, text);
      const stack = pamStackOfText(text, join(dir, "svc"), [dir]);
      assert.equal(
        bypassBefore(
          stack,
          stack.findIndex((l) => l.args.includes("expose_authtok")),
        ) !== null,
        refused,
        text,
      );
    }
  });
});

test("F1: withoutOtpgate removes the block and re-enables what otpgate disabled; a file otpgate created gets the password stack", () => {
  const original = "# site\n@include common-auth\n@include common-account\n@include common-session\n";
  assert.equal(withoutOtpgate(planPamService(original, block, TAIL)), original);
  const created = planPamService(null, block, { replacePassword: true, tail: ["@include common-account", "@include common-session"] });
  assert.equal(withoutOtpgate(created), "@include common-auth\n@include common-account\n@include common-session\n");
});

test("F2: setup refuses PAM services other logins use (by name, by include), and keeps its own", () => {
  withDir((root) => {
    mkdirSync(join(root, "etc/pam.d"), { recursive: true });
    writeFileSync(join(root, "etc/pam.d/app"), "auth substack shared-x\n");
    for (const name of ["sudo", "common-auth", "common-foo", "system-auth", "login", "sshd", "shared-x"]) {
      assert.match(foreignTargetProblem("rstudio", root, name, []) ?? "", /^--service .*Nothing was written/, name);
    }
    assert.match(foreignTargetProblem("ssh", root, "shared-x", []) ?? "", /included by .*app/);
    assert.equal(foreignTargetProblem("ssh", root, "sshd", []), null);
    assert.equal(foreignTargetProblem("rstudio", root, "rstudio", []), null);
    writeFileSync(join(root, "etc/pam.d/mine"), "# otpgate: begin (sshd: key+code, written by otpgate setup ssh)\n");
    assert.match(foreignTargetProblem("rstudio", root, "mine", []) ?? "", /otpgate setup ssh wrote sshd's stack/);
  });
});

test("F5: setup writes UTF-8 (what node decodes argv with), reads it back; the PAM line's secret reads back as meant; non-UTF-8 files are refused", () => {
  withDir((dir) => {
    const pam = join(dir, "svc");
    const secret = "/var/lib/états/${USER}";
    const lines = authBlock({ node: "/usr/bin/node", otpgate: "/opt/otpgate.cjs", pamArgs: [`secret=${secret}`], hint: null }, "t");
    applyChanges([{ path: pam, next: lines.join("\n") + "\n" }], { manifest: join(dir, "m.json"), now: new Date(0), validate: () => null });
    assert.ok(readFileSync(pam).includes(Buffer.from("états", "utf8")));
    assert.equal(pamLineSecret(pam), secret);
    assert.deepEqual(pendingChanges([{ path: pam, next: lines.join("\n") + "\n" }]), [], "idempotent on the bytes");
    writeFileSync(join(dir, "latin1"), Buffer.from([0x61, 0xe9, 0x0a]));
    assert.throws(
      () => readIfExists(join(dir, "latin1")),
      (e: unknown) => e instanceof SetupError && /not valid UTF-8/.test(e.message),
    );
    assert.ok(existsSync(join(dir, "m.json")));
  });
});

test("F4: Include globs with character classes (glob(3))", () => {
  assert.ok(globRegExp("[a-z]*.conf").test("lan.conf"));
  assert.ok(!globRegExp("[a-z]*.conf").test("50-lan.conf"));
  assert.ok(globRegExp("[!0-9]*.conf").test("x.conf"));
  assert.ok(!globRegExp("[!0-9]*.conf").test("5.conf"));
  assert.ok(globRegExp("a[]]b").test("a]b"));
  assert.ok(globRegExp("x[.conf").test("x[.conf"), "an unclosed [ is literal");
  assert.ok(!globRegExp("*.conf").test(".hidden/x.conf"));
});
