// Red team RT-C F5: `otpgate gateway --check-config` accepted limits that cancel each other, with
// no word: a per-address cap at or above max_connections, app_connections below one user's share,
// and caps beyond the packaged unit's LimitNOFILE. Each now starts (exit 0) with a warning line.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { run } from "../../src/adapters/cli/commands/gateway.js";
import { tempDir } from "../helpers/system.js";

async function checkConfig(t: TestContext, limits: string): Promise<{ status: number; out: string; warnings: string[] }> {
  const dir = tempDir(t);
  mkdirSync(join(dir, "k"), { mode: 0o700 });
  const path = join(dir, "gw.yaml");
  writeFileSync(path, `public_url: http://app.test\nupstream: http://127.0.0.1:9\nkeys_file: ${join(dir, "k", "gateway.keys")}\nlimits: ${limits}\n`);
  const out: string[] = [];
  const err: string[] = [];
  const status = await run(["--config", path, "--check-config"], { out: (l) => out.push(l), err: (l) => err.push(l), prompt: () => {} });
  return { status, out: out.join("\n"), warnings: err.filter((l) => /warning: limits:/.test(l)) };
}

test("RT-C F5: max_connections not above connections_per_address is warned about (exit 0)", async (t) => {
  const r = await checkConfig(t, "{max_connections: 16, connections_per_address: 64}");
  assert.equal(r.status, 0);
  assert.equal(r.warnings.length, 1, r.warnings.join("\n"));
  assert.match(r.warnings[0]!, /^otpgate gateway: warning: limits: max_connections \(16\) is not above connections_per_address \(64\): one client address can take every connection/);
  assert.equal((await checkConfig(t, "{max_connections: 64, connections_per_address: 64}")).warnings.length, 1, "equal is warned too");
  assert.deepEqual((await checkConfig(t, "{max_connections: 65, connections_per_address: 64}")).warnings, []);
});

test("RT-C F5: app_connections below app_requests_per_user + tunnels_per_user is warned about (exit 0)", async (t) => {
  const r = await checkConfig(t, "{app_connections: 16, app_requests_per_user: 64, tunnels_per_user: 32}");
  assert.equal(r.status, 0);
  assert.equal(r.warnings.length, 1, r.warnings.join("\n"));
  assert.match(r.warnings[0]!, /limits: app_connections \(16\) is below app_requests_per_user \+ tunnels_per_user \(64 \+ 32 = 96\): one user can take every app connection/);
  assert.deepEqual((await checkConfig(t, "{app_connections: 96, app_requests_per_user: 64, tunnels_per_user: 32}")).warnings, []);
});

test("RT-C F5: max_connections + app_connections above the unit's LimitNOFILE=16384 is warned about (exit 0); the defaults give no warning", async (t) => {
  const r = await checkConfig(t, "{max_connections: 1000000, app_connections: 1000000}");
  assert.equal(r.status, 0);
  assert.equal(r.warnings.length, 1, r.warnings.join("\n"));
  assert.match(r.warnings[0]!, /limits: max_connections \+ app_connections \(1000000 \+ 1000000 = 2000000\) exceed the packaged unit's LimitNOFILE=16384: .*EMFILE/);
  assert.deepEqual((await checkConfig(t, "{max_connections: 12288, app_connections: 4096}")).warnings, [], "16384 exactly is not above");
  assert.equal((await checkConfig(t, "{max_connections: 12289, app_connections: 4096}")).warnings.length, 1);
  assert.deepEqual((await checkConfig(t, "{}")).warnings, []);
});
