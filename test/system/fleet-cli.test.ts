// otpgate db through the built CLI (dist/otpgate-fleet.cjs) on a real cluster over TCP with TLS
// (sslmode=verify-full) and a password file: migrate --create-key-file, audit, and the bundles:
// node-postgres is in the fleet bundle only, never in the core bundle the login path loads.
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { connectFleetStore } from "../../src/stores/pg/connect.js";
import { startCluster } from "../helpers/postgres.js";
import { ROOT, runCli, systemReady, tempDir, uniqueName } from "../helpers/system.js";
import { DOC } from "../helpers/fleet.js";

test("the core bundle (login path) holds no node-postgres; the fleet bundle does", () => {
  const core = readFileSync(join(ROOT, "dist/otpgate-core.cjs"), "utf8");
  const fleet = readFileSync(join(ROOT, "dist/otpgate-fleet.cjs"), "utf8");
  for (const marker of ["pg-protocol", "BoundPool", "SCRAM-SHA-256"]) assert.ok(!core.includes(marker), `the core bundle contains ${marker}`);
  assert.ok(fleet.includes("SCRAM-SHA-256"), "the fleet bundle holds node-postgres");
  assert.match(core, /require\("\.\/otpgate-fleet\.cjs"\)/, "the core bundle loads the fleet bundle on demand");
});

test("otpgate db migrate/audit over TLS (verify-full) with a password file, through the built CLI", async (t) => {
  if (!systemReady(t, ["openssl"])) return;
  const role = { name: uniqueName("otp"), password: `pw-${uniqueName("x")}` };
  const pg = await startCluster(t, { tcpPort: 20_000 + randomInt(20_000), tls: true, role });
  const dir = tempDir(t, "otpgate-fleet-cli-");
  const pw = join(dir, "db.password");
  writeFileSync(pw, role.password + "\n", { mode: 0o600 });
  const keys = join(dir, "db.key");
  const url = `postgres://${role.name}@localhost:${pg.port}/otpgate?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.caFile!)}`;
  const store = ["--store", url, "--db-password-file", pw, "--db-key-file", keys];

  const first = runCli(["db", "migrate", ...store, "--create-key-file"]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /created the key file .*copy it unchanged to every host/);
  assert.match(first.stdout, /applied schema migration\(s\) 1/);
  assert.equal(statSync(keys).mode & 0o777, 0o600);
  const again = runCli(["db", "migrate", ...store]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /is up to date/);

  // A CA that did not sign the server's certificate: verify-full refuses, exit 2 (unreachable, H7's one rule), no password shown.
  const otherCa = join(dir, "other-ca.crt");
  writeFileSync(otherCa, readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8"));
  const wrongCa = runCli(["db", "audit", "--store", url.replace(encodeURIComponent(pg.caFile!), encodeURIComponent(otherCa)), "--db-password-file", pw, "--db-key-file", keys]);
  assert.equal(wrongCa.status, 2, wrongCa.stderr);
  assert.match(wrongCa.stderr, /otpgate db: the fleet database .* is unavailable/);
  assert.ok(!wrongCa.stderr.includes(role.password), "no password in the message");
  // A wrong password: exit 2, the message without it.
  writeFileSync(join(dir, "bad.password"), "not-it\n", { mode: 0o600 });
  const badPw = runCli(["db", "audit", "--store", url, "--db-password-file", join(dir, "bad.password"), "--db-key-file", keys]);
  assert.equal(badPw.status, 2, badPw.stderr);
  assert.match(badPw.stderr, /password authentication failed/);
  assert.ok(!badPw.stderr.includes("not-it"));

  // Audit records written by a store, read back by the CLI (user, since, json); never a code.
  const s = await connectFleetStore({ url, passwordFile: pw, keyFile: keys, log: () => {} });
  t.after(() => s.close().catch(() => {}));
  await s.put("alice", DOC, "create");
  const now = Date.now();
  s.audit({ at: now - 3 * 3_600_000, user: "alice", host: "h1", service: "radius", clientAddress: "192.0.2.1", result: "rejected", reason: "wrong", via: null });
  s.audit({ at: now, user: "alice", host: "h2", service: "gateway", clientAddress: null, result: "accepted", reason: "ok", via: "totp" });
  s.audit({ at: now, user: "bob", host: "h2", service: "radius", clientAddress: null, result: "rejected", reason: "not-enrolled", via: null });
  await s.flushAudit();
  const text = runCli(["db", "audit", ...store, "--user", "alice"]);
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout.trim().split("\n").length, 2);
  assert.match(text.stdout.split("\n")[0]!, /alice accepted ok via totp host=h2 service=gateway/);
  const recent = runCli(["db", "audit", ...store, "--user", "alice", "--since", "1h", "--json"]);
  assert.equal(recent.status, 0, recent.stderr);
  const rows = recent.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    rows.map((r) => [r.user, r.host, r.result]),
    [["alice", "h2", "accepted"]],
  );
  const bad = runCli(["db", "audit", ...store, "--since", "yesterday"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--since "yesterday": give a duration/);
  const wrongFlag = runCli(["db", "audit", ...store, "--add"]);
  assert.equal(wrongFlag.status, 2);
  assert.match(wrongFlag.stderr, /--add goes with otpgate db rotate-key/);
});
