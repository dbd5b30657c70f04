// Enrollment links resolve their user through the user directory (issue 9, item 6): asynchronous,
// with a timeout, never a blocking getent on the event loop.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { createUserDirectory } from "../../src/adapters/http/user-directory.js";
import { stateFileStores } from "../../src/adapters/http/gateway-entry.js";
import { createInvite } from "../../src/stores/invite-store.js";
import { appRequest, fakeDirectory, testApp } from "../helpers/gateway-app.js";
import { tempDir } from "../helpers/system.js";

function invitesFor(t: Parameters<typeof tempDir>[0], user: string): { dir: string; token: string } {
  const dir = join(tempDir(t), "invites");
  mkdirSync(dir, { mode: 0o700 });
  const { token } = createInvite(dir, user, { nowMs: 1_800_000_000_000, ttlMs: 3_600_000, replace: false });
  return { dir, token };
}

test("an enrollment link asks the user directory; a hanging directory gives 'busy' at the lookup timeout", async (t) => {
  const { dir, token } = invitesFor(t, "carol");
  let asked = "";
  const users = createUserDirectory({ lookup: (name) => ((asked = name), new Promise(() => {})), timeoutMs: 50, storeOf: stateFileStores("~/.google_authenticator") });
  const { app, logs } = testApp({ invites_dir: dir }, { users });
  const res = await appRequest(app, `/_otpgate/enroll/${token}`);
  assert.equal(res.status, 503);
  assert.match(res.text, /could not look up your invitation or account just now/);
  assert.equal(asked, "carol");
  assert.equal(logs.at(-1)!.reason, "lookup-timeout");
});

test("an enrollment link for a user the directory does not know: 404 with the reason in the log", async (t) => {
  const { dir, token } = invitesFor(t, "nosuchuser");
  const users = fakeDirectory();
  const { app, logs } = testApp({ invites_dir: dir }, { users });
  const res = await appRequest(app, `/_otpgate/enroll/${token}`);
  assert.equal(res.status, 404);
  assert.deepEqual(users.lookups, ["nosuchuser"]);
  assert.equal(logs.at(-1)!.reason, "unknown-user");
});
