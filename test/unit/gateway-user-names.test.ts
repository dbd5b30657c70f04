// One rule for user names everywhere (issue 10): the gateway, its password file and otpgate passwd
// use core/user-name.ts (userNameProblem), so an SSSD name such as alice@corp that can log in over
// SSH can also use the gateway, with or without its password factor. The password file's format
// still parses: ':' and white space (and a leading '#', a comment) stay impossible in its names.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { parsePasswordEntries, passwordEntryNameProblem, withPasswordEntry } from "../../src/core/web/password-entries.js";
import { hashPassword } from "../../src/platform/password-hash.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { updatePasswordFile } from "../../src/stores/password-file.js";
import { appRequest, fakeDirectory, testApp } from "../helpers/gateway-app.js";
import { codeAt } from "../helpers/otp.js";
import { tempDir } from "../helpers/system.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const STATE = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;
const HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$Y2FsY3VsYXRlZGhhc2hjYWxjdWxhdGVkaGFzaA";

async function signIn(app: ReturnType<typeof testApp>["app"], fields: Record<string, string>) {
  const page = await appRequest(app, "/_otpgate/login");
  const cookie = page
    .all("set-cookie")
    .map((c) => c.split(";")[0]!)
    .join("; ");
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
  const body = new URLSearchParams({ csrf, rd: "/", ...fields }).toString();
  return appRequest(app, "/_otpgate/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", cookie }, body });
}

test("password file names: every login name the one rule accepts, except ':', white space and a leading '#' (the file's own syntax)", () => {
  for (const name of ["alice", "alice@corp", "alice@corp.example.com", "CORP\\bob", "élodie", "9abc", "a.b-c_d"]) {
    assert.equal(passwordEntryNameProblem(name), null, name);
    const text = withPasswordEntry("# comment\n", name, HASH);
    assert.equal(parsePasswordEntries(text).get(name), HASH, `${name}: written and read back`);
  }
  const refused: [string, RegExp][] = [
    ["a:b", /":"/],
    ["a b", /white space/],
    ["a\tb", /control character|white space/],
    ["#alice", /"#"/],
    ["", /empty/],
    ["a/b", /"\/"/],
    ["..", /".."/],
    ["x".repeat(300), /longer than/],
  ];
  for (const [name, why] of refused) {
    assert.match(passwordEntryNameProblem(name) ?? "", why, JSON.stringify(name));
    assert.throws(() => withPasswordEntry("", name, HASH), /cannot be used in the password file/, JSON.stringify(name));
  }
  // A line whose name breaks the rule is refused when read (never taken as another user's line).
  assert.throws(() => parsePasswordEntries(`a b:${HASH}\n`), /line 1/);
  assert.equal(parsePasswordEntries(`#alice:${HASH}\n`).size, 0, "a leading # is a comment");
});

test("alice@corp (an SSSD name) signs in to the gateway with code only and with the password factor; the form shows her name again", async (t) => {
  const user = "alice@corp";
  const noPassword = testApp({}, { users: fakeDirectory({ [user]: new MemoryAccountStore(STATE) }) });
  const code = codeAt(SECRET, Math.floor(noPassword.clock.nowMs() / 30_000));
  const wrong = await signIn(noPassword.app, { user, code: code === "000000" ? "000001" : "000000" });
  assert.equal(wrong.status, 401);
  assert.match(wrong.text, /value="alice@corp"/, "the refused form keeps the name");
  assert.equal((await signIn(noPassword.app, { user, code })).status, 303, "code only");

  const file = join(tempDir(t, "names-"), "passwords");
  await updatePasswordFile(file, user, await hashPassword("alice's long password"));
  const withPassword = testApp({ password_file: file }, { users: fakeDirectory({ [user]: new MemoryAccountStore(STATE) }) });
  const code2 = codeAt(SECRET, Math.floor(withPassword.clock.nowMs() / 30_000));
  assert.equal((await signIn(withPassword.app, { user, code: code2, password: "not her password" })).status, 401);
  const ok = await signIn(withPassword.app, { user, code: code2, password: "alice's long password" });
  assert.equal(ok.status, 303, "password + code");
  assert.ok(withPassword.logs.some((l) => l.event === "login" && l.result === "accepted" && l.user === user));
});
