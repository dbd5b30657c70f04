// The resident server's account lookups: /etc/passwd-style files first, then NSS through an
// asynchronous getent, cached (found and not found), a bounded number at a time.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { UserCache } from "../../src/platform/user-cache.js";
import { tempDir } from "../helpers/system.js";

function fixture(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const passwd = join(dir, "passwd");
  const group = join(dir, "group");
  const calls = join(dir, "calls");
  const getent = join(dir, "getent");
  writeFileSync(passwd, "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/sh\n");
  writeFileSync(group, "alice:x:1001:\nstaff:x:50:bob,alice\nother:x:60:bob\n");
  writeFileSync(calls, "");
  // A stand-in for getent: knows "ldapuser", logs each call, takes 50 ms.
  writeFileSync(getent, `#!/bin/sh\necho "$3" >> ${calls}\nsleep 0.05\n[ "$3" = ldapuser ] && echo "ldapuser:*:5000:5000:L:/home/ldapuser:/bin/sh"\nexit 0\n`, { mode: 0o755 });
  let now = 1_000_000;
  const cache = new UserCache({ passwdPath: passwd, groupPath: group, getent, nowMs: () => now, maxGetent: 2, maxQueued: 2 });
  return { cache, calls: () => readFileSync(calls, "utf8").split("\n").filter(Boolean), advance: (ms: number) => (now += ms) };
}

test("local users come from the passwd file with their groups; no process is started", async (t) => {
  const f = fixture(t);
  assert.deepEqual(await f.cache.lookup("alice"), { name: "alice", uid: 1001, gid: 1001, home: "/home/alice", groups: [1001, 50] });
  assert.equal(f.cache.spawned, 0);
});

test("other names are asked of NSS once and cached, found or not; bad names never", async (t) => {
  const f = fixture(t);
  assert.deepEqual(await f.cache.lookup("ldapuser"), { name: "ldapuser", uid: 5000, gid: 5000, home: "/home/ldapuser", groups: [5000] });
  assert.equal(((await f.cache.lookup("ldapuser")) as { uid: number }).uid, 5000);
  assert.equal(await f.cache.lookup("nosuch"), null);
  assert.equal(await f.cache.lookup("nosuch"), null);
  assert.equal(await f.cache.lookup("-x"), null);
  assert.equal(await f.cache.lookup("1001"), null, "numeric names are not uids");
  assert.deepEqual(f.calls(), ["ldapuser", "nosuch"]);
  f.advance(31_000);
  assert.equal(await f.cache.lookup("nosuch"), null);
  assert.deepEqual(f.calls(), ["ldapuser", "nosuch", "nosuch"], "a negative answer expires after 30 s");
});

test("a burst of unknown names: at most 2 getent at a time, 2 queued, the rest 'busy' at once", async (t) => {
  const f = fixture(t);
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => f.cache.lookup(`u${i}`)));
  assert.equal(results.filter((r) => r === "busy").length, 16);
  assert.equal(f.cache.spawned, 4);
});
