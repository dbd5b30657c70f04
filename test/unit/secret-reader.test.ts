// The secret the gateway's session checks compare against: read through the user lookup and the
// state file as a login reads them; "cannot tell" (busy, a hung lookup) is an error, never a verdict.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createSecretReader } from "../../src/adapters/http/secret-reader.js";
import type { LookupResult } from "../../src/platform/user-cache.js";

test("secret reader: no user or no state file is null; busy or a hung lookup throws (checked again later); the first line otherwise", async (t) => {
  if (process.geteuid?.() !== 0) return void t.skip("reads a state file acting as its owner: root");
  const dir = mkdtempSync(join(tmpdir(), "otpgate-secret-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = { name: "root", uid: 0, gid: 0, home: "/root", groups: [] as number[] };
  const answers: Record<string, LookupResult | "hang"> = { ghost: null, busy: "busy", hung: "hang", root };
  const lookup = (name: string): Promise<LookupResult> => (answers[name] === "hang" ? new Promise(() => undefined) : Promise.resolve(answers[name] as LookupResult));
  const read = createSecretReader({ lookup }, join(dir, "ga-${USER}"), 50);
  assert.equal(await read("ghost"), null);
  await assert.rejects(read("busy"), /cannot tell now \(busy, or NSS failed\); checking the session again later/);
  await assert.rejects(read("hung"), /timed out; checking the session again later/);
  assert.equal(await read("root"), null, "not enrolled");
  writeFileSync(join(dir, "ga-root"), "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n", { mode: 0o400 });
  assert.equal(await read("root"), "JBSWY3DPEHPK3PXP");
  rmSync(join(dir, "ga-root"));
  writeFileSync(join(dir, "ga-root"), "JBSWY3DPEHPK3PXP\n", { mode: 0o644 });
  assert.equal(await read("root"), null, "a state file a login would refuse (loose mode)");
});
