// The gateway's password factor: the htpasswd-like file (pure codec, store with its refusals) and
// the argon2id wrapper (PHC strings in the reference parameter order).
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError, UsageError } from "../../src/core/errors.js";
import { parsePasswordEntries, passwordProblem, withPasswordEntry } from "../../src/core/web/password-entries.js";
import { canonicalPhc, hashPassword, verifyNothing, verifyPassword } from "../../src/platform/password-hash.js";
import { existingPasswords, readPasswordFile, updatePasswordFile } from "../../src/stores/password-file.js";

const H1 = "$argon2id$v=19$m=65536,t=3,p=4$AAAAAAAAAAAAAAAAAAAAAA$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
const H2 = "$argon2id$v=19$m=19456,t=2,p=1$CCCCCCCCCCCCCCCCCCCCCC$DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD";

test("entries: parse, replace, append, delete; comments and blank lines are kept", () => {
  const text = `# gateway passwords\nalice:${H1}\n\nbob:${H2}\n`;
  assert.deepEqual(
    [...parsePasswordEntries(text)],
    [
      ["alice", H1],
      ["bob", H2],
    ],
  );
  assert.equal(withPasswordEntry(text, "alice", H2), `# gateway passwords\nalice:${H2}\n\nbob:${H2}\n`);
  assert.equal(withPasswordEntry(text, "carol", H1), `${text}carol:${H1}\n`);
  assert.equal(withPasswordEntry(text, "bob", null), `# gateway passwords\nalice:${H1}\n\n`);
  assert.equal(withPasswordEntry("", "alice", H1), `alice:${H1}\n`);
  assert.equal(withPasswordEntry(`alice:${H1}\n`, "alice", null), "");
  assert.equal(withPasswordEntry(`alice-x:${H1}\n`, "alice", H2), `alice-x:${H1}\nalice:${H2}\n`, "a prefix of another name is not that name");
});

test("entries: malformed lines, other hash types, duplicates and bad names are refused by line number, never echoed", () => {
  const bad = [
    [`alice:$2y$10$abcdefghijklmnopqrstuv`, /line 1: not "user:\$argon2id\$\.\.\."/],
    [`alice:$argon2i$v=19$m=65536,t=3,p=4$AAAAAAAAAAAAAAAAAAAAAA$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB`, /line 1/],
    [`# ok\nalice`, /line 2/],
    [`../x:${H1}`, /line 1/],
    [`alice:${H1}\nalice:${H2}`, /line 2: a second line for alice/],
  ] as const;
  for (const [text, message] of bad) {
    assert.throws(
      () => parsePasswordEntries(text, "pw"),
      (e: Error) => e instanceof ConfigError && message.test(e.message) && !e.message.includes("$2y$") && !e.message.includes("BBBB"),
    );
  }
  assert.throws(() => withPasswordEntry("", "bad name", H1), /cannot be used in the password file: it contains white space/);
  assert.throws(() => withPasswordEntry("", "alice", "plain"), /not an argon2id hash/);
});

test("new passwords: at least 10 characters, at most 1024 bytes, no control characters", () => {
  assert.match(passwordProblem("short") ?? "", /at least 10/);
  assert.equal(passwordProblem("ten chars!"), null);
  assert.equal(passwordProblem("пароль-пароль"), null);
  assert.match(passwordProblem("x".repeat(1025)) ?? "", /at most 1024 bytes/);
  assert.match(passwordProblem("tab\tinside it") ?? "", /control characters/);
});

test("argon2id: hashes verify, wrong passwords do not, malformed hashes are false; PHC order is m,t,p", async () => {
  const hash = await hashPassword("correct horse battery");
  assert.match(hash, /^\$argon2id\$v=19\$m=65536,t=3,p=4\$/);
  assert.equal(await verifyPassword(hash, "correct horse battery"), true);
  assert.equal(await verifyPassword(hash, "correct horse batterx"), false);
  assert.equal(await verifyPassword("$argon2id$garbage", "x"), false);
  assert.equal(await verifyNothing("anything"), false);
  assert.equal(canonicalPhc("$argon2id$v=19$m=1024,p=2,t=5$salt$hash"), "$argon2id$v=19$m=1024,t=5,p=2$salt$hash");
  const parallel = await Promise.all(Array.from({ length: 6 }, (_, i) => verifyPassword(hash, i === 3 ? "correct horse battery" : "no")));
  assert.deepEqual(parallel, [false, false, false, true, false, false], "queued checks all complete with their own result");
});

test("store: created 0600 with its directory, changed atomically; refuses symlinks and loose modes without changing them", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-pw-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "etc", "passwords");
  assert.equal(existingPasswords(path), null);
  assert.throws(() => readPasswordFile(path), /does not exist; create it by setting a first password: otpgate passwd USER --file/);
  await updatePasswordFile(path, "alice", H1);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  await updatePasswordFile(path, "bob", H2);
  await updatePasswordFile(path, "alice", H2);
  assert.equal(readFileSync(path, "utf8"), `alice:${H2}\nbob:${H2}\n`);
  await assert.rejects(updatePasswordFile(path, "carol", null), (e: Error) => e instanceof UsageError && /carol has no password/.test(e.message));

  chmodSync(path, 0o640);
  const before = readFileSync(path, "utf8");
  assert.throws(() => readPasswordFile(path), /must not be readable or writable by others \(it holds password hashes\): chmod 600/);
  await assert.rejects(updatePasswordFile(path, "alice", H1), /chmod 600/);
  assert.equal(readFileSync(path, "utf8"), before);
  assert.equal(statSync(path).mode & 0o777, 0o640, "nothing changed");
  chmodSync(path, 0o600);

  const link = join(dir, "link");
  symlinkSync(path, link);
  assert.throws(() => readPasswordFile(link), /is a symbolic link/);
  await assert.rejects(updatePasswordFile(link, "alice", H1), /is a symbolic link/);
  assert.equal(readFileSync(path, "utf8"), before);

  const junk = join(dir, "junk");
  writeFileSync(junk, "alice:plaintext\n", { mode: 0o600 });
  await assert.rejects(updatePasswordFile(junk, "bob", H1), /junk, line 1/);
  assert.equal(readFileSync(junk, "utf8"), "alice:plaintext\n");
});
