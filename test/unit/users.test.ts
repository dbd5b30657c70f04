import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { lookupUserById, lookupUserByName, type UserAccount } from "../../src/platform/users.js";

const dir = mkdtempSync(join(tmpdir(), "otpgate-users-"));
const passwd = join(dir, "passwd");
writeFileSync(passwd, "root:x:0:0:root:/root:/bin/sh\nalice:x:1006:1006::/home/alice:/bin/sh\n");
// getent answers a numeric key with the account of that uid, as glibc does.
const getent = (key: string): UserAccount | null =>
  key === "1006" || key === "alice" ? { name: "alice", uid: 1006, gid: 1006, home: "/home/alice" } : key === "ldapuser" ? { name: "ldapuser", uid: 5000, gid: 5000, home: "/home/l" } : null;

test("a numeric name is a name, never a uid", () => {
  assert.equal(lookupUserByName("1006", passwd, getent), null);
  assert.equal(lookupUserByName("alice", passwd, getent)?.uid, 1006);
  assert.equal(lookupUserByName("ldapuser", passwd, getent)?.uid, 5000, "NSS sources still work");
  assert.equal(lookupUserById(1006, passwd, getent)?.name, "alice");
  assert.equal(lookupUserById(-1, passwd, getent), null);
  for (const bad of ["..", ".", "a/b", "x\n", ""]) assert.equal(lookupUserByName(bad, passwd, getent), null, JSON.stringify(bad));
  rmSync(dir, { recursive: true, force: true });
});
