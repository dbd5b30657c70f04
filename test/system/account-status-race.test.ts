// Root's status/doctor view of a user's state file while the user races it (review 2, F4): every
// file operation goes through the store (as the user), the mode comes from the fstat of the read,
// and a problem with one account is that account's row, never an abort.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { accountStatus } from "../../src/admin/account-status.js";
import { FileAccountStore } from "../../src/stores/file-store.js";
import { runCli, throwawayUser } from "../helpers/system.js";

test("a user renaming their state file back and forth: root's accountStatus never throws, every result is a row", { skip: process.geteuid?.() !== 0 && "needs root", timeout: 60_000 }, async (t) => {
  const user = throwawayUser(t);
  assert.equal(runCli(["enroll", "--user", user.name, "-q", "-t", "-d", "-W", "-r", "3", "-R", "30"]).status, 0);
  const path = join(user.home, ".google_authenticator");
  const racer = spawn(
    "python3",
    [
      "-c",
      `
import os, time
os.chdir(${JSON.stringify(user.home)}); end = time.time() + 6
while time.time() < end:
    os.rename(".google_authenticator", ".ga"); os.rename(".ga", ".google_authenticator")
`,
    ],
    { uid: user.uid, gid: user.gid, stdio: "ignore" },
  );
  t.after(() => racer.kill("SIGKILL"));
  const exited = new Promise((r) => racer.once("exit", r));
  await new Promise((r) => setTimeout(r, 300));
  const store = new FileAccountStore({ path, owner: { uid: user.uid, name: user.name }, strictOwner: true, allowedPerm: 0o600, actAs: { uid: user.uid, gid: user.gid, groups: [user.gid] } });
  const seen = { enrolled: 0, missing: 0, errors: 0 };
  const end = Date.now() + 4000;
  let n = 0;
  while (Date.now() < end) {
    n++;
    const s = accountStatus(store, user.name, Date.now()); // must never throw
    if (!s.enrolled) seen.missing++;
    else if (s.error) seen.errors++;
    else {
      seen.enrolled++;
      assert.equal(s.fileMode, "0400", "the mode of the file that was read");
    }
  }
  await exited;
  t.diagnostic(`${n} calls during the race: ${JSON.stringify(seen)}`);
  assert.ok(seen.enrolled > 0 && seen.missing > 0, "the race really happened");
  assert.equal(process.geteuid?.(), 0, "root again after each call");
});
