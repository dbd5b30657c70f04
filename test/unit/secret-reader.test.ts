// What the gateway's session checks compare against: the secret's fingerprint as the decision
// service reports it (here in-process: the user lookup and the state file as a login reads them);
// "cannot tell" (busy, a hung lookup, the service down) is an error, never a verdict.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createSecretReader } from "../../src/adapters/http/secret-reader.js";
import { localDecisions, localFingerprint } from "../../src/adapters/http/local-decisions.js";
import { createUserDirectory } from "../../src/adapters/http/user-directory.js";
import { stateFileStores } from "../../src/adapters/http/gateway-entry.js";
import { DecisionServiceUnavailable } from "../../src/ports/decision-service.js";
import type { LookupResult } from "../../src/platform/user-cache.js";

test("secret reader: no user or no state file is null; busy or a hung lookup throws (checked again later); the first line otherwise", async (t) => {
  if (process.geteuid?.() !== 0) return void t.skip("reads a state file acting as its owner: root");
  const dir = mkdtempSync(join(tmpdir(), "otpgate-secret-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = { name: "root", uid: 0, gid: 0, home: "/root", groups: [] as number[] };
  const answers: Record<string, LookupResult | "hang"> = { ghost: null, busy: "busy", hung: "hang", root };
  const lookup = (name: string): Promise<LookupResult> => (answers[name] === "hang" ? new Promise(() => undefined) : Promise.resolve(answers[name] as LookupResult));
  const stateFiles = join(dir, "ga-${USER}");
  const read = createSecretReader(
    localDecisions({ users: createUserDirectory({ lookup, timeoutMs: 50, storeOf: stateFileStores(stateFiles) }), stateFiles, invitesDir: "/nonexistent", clock: { nowMs: () => 0 } }),
  );
  assert.equal(await read("ghost"), null);
  await assert.rejects(read("busy"), /cannot tell now \(busy\); checking again later/);
  await assert.rejects(read("hung"), /cannot tell now \(timeout\); checking again later/);
  assert.equal(await read("root"), null, "not enrolled");
  writeFileSync(join(dir, "ga-root"), 'JBSWY3DPEHPK3PXP\n" TOTP_AUTH\n', { mode: 0o400 });
  assert.equal(await read("root"), localFingerprint("root", "JBSWY3DPEHPK3PXP"), "the fingerprint of the secret line");
  rmSync(join(dir, "ga-root"));
  writeFileSync(join(dir, "ga-root"), "JBSWY3DPEHPK3PXP\n", { mode: 0o644 });
  assert.equal(await read("root"), null, "a state file a login would refuse (loose mode)");
});

test("secret reader through a decision service: enrolled is its fingerprint; unknown, not enrolled and unusable are null; unavailable throws", async () => {
  const replies: Record<string, unknown> = {
    a: { account: "enrolled", fingerprint: "FP-a" },
    u: { account: "unknown" },
    n: { account: "not-enrolled" },
    x: { account: "unusable", problem: "loose mode" },
  };
  const read = createSecretReader({
    account: async ({ user }) => {
      if (user === "down") throw new DecisionServiceUnavailable("otpgate server cannot be asked");
      return replies[user] as never;
    },
  });
  assert.equal(await read("a"), "FP-a");
  for (const user of ["u", "n", "x"]) assert.equal(await read(user), null, user);
  await assert.rejects(read("down"), DecisionServiceUnavailable);
});
