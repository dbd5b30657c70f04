// Red team rt1, Finding 2, end to end: `otpgate pam grace_period=…` under the real pam_exec
// (pamtester) with a PAM_RHOST carrying a newline and an 8-digit line. Before the fix the login
// wrote `" LAST0 evil 1\n98765432\n" X <time>` into the state file: a new emergency code.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CLI, enrolledUser, oathTotp, pamService, pamtester, syslogListener, systemReady } from "../helpers/system.js";

const stack = (args: string) => [
  `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam ${args}`,
  "auth requisite pam_deny.so",
  "auth required pam_permit.so",
];

describe("grace_period and a hostile PAM_RHOST (rt1 F2)", () => {
  test("a PAM_RHOST with line breaks adds no line to the state file; the injected code is refused; the log says grace=not-recorded", (t) => {
    if (!systemReady(t, ["pamtester", "oathtool", "python3"])) return;
    const log = syslogListener(t);
    const { user, secret } = enrolledUser(t);
    const service = pamService(t, stack(`grace_period=60 log_socket=${log.socket}`));
    const file = join(user.home, ".google_authenticator");
    const before = readFileSync(file, "latin1");
    const rhost = 'evil 1\n98765432\n" X';
    assert.equal(pamtester(service, user.name, oathTotp(secret), undefined, [`rhost=${rhost}`]).ok, true, "the right code is accepted");
    const after = readFileSync(file, "latin1");
    assert.doesNotMatch(after, /^98765432$/m, "no emergency code was injected");
    assert.doesNotMatch(after, /LAST\d/, "nothing recorded for that host");
    assert.equal(after.split("\n").length, before.split("\n").length, "no line was added");
    assert.equal(pamtester(service, user.name, "98765432", undefined, ["rhost=other"]).ok, false, "the would-be injected code is refused");
    assert.equal(pamtester(service, user.name, "", undefined, [`rhost=${rhost}`]).ok, false, "no grace for that host");
    const lines = log.lines();
    assert.match(lines[0]!, / result=accepted via=totp grace=not-recorded graceProblem="PAM_RHOST contains a blank/, lines.join("\n"));
  });
});
