// doctor's reading of the RADIUS backend's stack (services/radius-stack.ts): a wrong password must
// end the stack before pam_radius_auth.so sends the code (else a right code is used up by a login
// that fails). Each stack is walked as libpam would with the password failing.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pamStackOfText } from "../../src/admin/pam-stack.js";
import { actionFor, passwordFailureReachesCode, radiusStackFindings } from "../../src/admin/radius-stack.js";

const KEY = "auth requisite pam_exec.so quiet quiet_log /bin/sh -c [exit 1]";
const RADIUS = "auth required pam_radius_auth.so conf=/etc/otpgate/pam_radius.conf [prompt=Verification code] force_prompt";

function findings(lines: string[], dirs: string[] = ["/nonexistent"]) {
  return radiusStackFindings("svc", pamStackOfText(lines.join("\n"), "svc", dirs, "auth"));
}

test("libpam's actions: plain controls and brackets (unnamed values take default, else bad)", () => {
  assert.equal(actionFor("required", "auth_err"), "bad");
  assert.equal(actionFor("requisite", "auth_err"), "die");
  assert.equal(actionFor("[success=ok default=die]", "auth_err"), "die");
  assert.equal(actionFor("[success=ok default=die]", "success"), "ok");
  assert.equal(actionFor("[success=1 default=ignore]", "auth_err"), "ignore");
  assert.equal(actionFor("[success=ok]", "auth_err"), "bad");
  assert.equal(actionFor("[success=ok auth_err=die default=ignore]", "auth_err"), "die");
});

test("the stacks setup writes are fine: key+code, and key+password+code with [success=ok default=die]", () => {
  assert.equal(findings([KEY, RADIUS])![0]!.severity, "ok");
  const pw = findings([KEY, "auth [success=ok default=die] pam_unix.so", RADIUS])!;
  assert.deepEqual(
    pw.map((f) => f.severity),
    ["ok"],
  );
  assert.match(pw[0]!.message, /the password \(pam_unix\.so\) must succeed before pam_radius_auth\.so sends the code/);
  assert.equal(findings(["auth required pam_permit.so"]), null, "no pam_radius_auth: not this check's business");
});

test("a password module that lets the stack go on after a failure is flagged: the code would be burnt", () => {
  for (const control of ["required", "optional", "[success=ok default=bad]", "[success=ok default=ignore]", "[success=ok auth_err=ignore default=die]"]) {
    const f = findings([KEY, `auth ${control} pam_unix.so`, RADIUS])!;
    assert.equal(f[0]!.severity, "fail", control);
    assert.match(f[0]!.message, /after a wrong password .*pam_unix\.so.* lets the stack go on to pam_radius_auth\.so.*used up/, control);
    assert.match(f[0]!.fix!, /\[success=ok default=die\] pam_unix\.so/);
  }
});

test("common-auth's pattern (pam_unix default=ignore, then requisite pam_deny) ends the stack: fine; through an include too", (t) => {
  const commonAuth = ["auth [success=1 default=ignore] pam_unix.so nullok", "auth requisite pam_deny.so", "auth required pam_permit.so"];
  assert.equal(findings([KEY, ...commonAuth, RADIUS])![0]!.severity, "ok");
  const dir = mkdtempSync(join(tmpdir(), "otpgate-pam-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "common-auth"), commonAuth.join("\n") + "\n");
  assert.equal(findings([KEY, "@include common-auth", RADIUS], [dir])![0]!.severity, "ok");
  writeFileSync(join(dir, "common-auth"), "auth required pam_unix.so\n");
  assert.equal(findings([KEY, "@include common-auth", RADIUS], [dir])![0]!.severity, "fail", "a weaker include is caught");
  const stack = pamStackOfText([KEY, "@include missing-file", RADIUS].join("\n"), "svc", [dir], "auth");
  assert.notEqual(passwordFailureReachesCode(stack, stack.length - 1), null, "an unreadable include: cannot tell, flagged");
});

test("a rule that can end the stack with success or jump over pam_radius_auth is flagged", () => {
  const f = findings([KEY, "auth sufficient pam_unix.so", RADIUS])!;
  assert.equal(f[0]!.severity, "fail");
  assert.match(f[0]!.message, /can end the auth stack with success or jump over the code check/);
});
