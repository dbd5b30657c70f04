// otpgate invite --store (H4's note): whether USER is enrolled is asked of the fleet database,
// not of a state file the server on --store never writes.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fleetStore, keyFile } from "../helpers/fleet.js";
import { startGateway } from "../helpers/gateway.js";
import { startCluster } from "../helpers/postgres.js";
import { runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

test("invite --store: enrolled in the database (no state file) needs --replace; not there refuses --replace", async (t) => {
  if (!systemReady(t, [])) return;
  const dir = tempDir(t);
  const gw = await startGateway(dir, { public_url: "https://app.test", invites_dir: join(dir, "invites"), issuer: "Lab", allowed_hosts: ["app.test"] });
  t.after(() => gw.stop());
  const pg = await startCluster(t);
  const keys = keyFile(t);
  const store = await fleetStore(t, pg, keys);
  const inDb = throwawayUser(t);
  const fresh = throwawayUser(t);
  assert.equal(await store.put(inDb.name, `${A}\n" TOTP_AUTH\n`, "create"), "written");
  const fleet = ["--store", pg.url, "--db-key-file", keys];
  const invites = () => (existsSync(join(dir, "invites")) ? readdirSync(join(dir, "invites")).length : 0);
  const before = invites();

  const enrolled = runCli(["invite", inDb.name, "--config", gw.configPath, ...fleet]);
  assert.equal(enrolled.status, 2, enrolled.stderr);
  assert.match(enrolled.stderr, new RegExp(`${inDb.name} is already enrolled \\(in the fleet database\\); pass --replace`));
  const notThere = runCli(["invite", fresh.name, "--config", gw.configPath, "--replace", ...fleet]);
  assert.equal(notThere.status, 2, notThere.stderr);
  assert.match(notThere.stderr, new RegExp(`${fresh.name} is not enrolled yet \\(not in the fleet database\\); leave out --replace`));
  assert.equal(invites(), before, "no invitation written");

  const ok = runCli(["invite", fresh.name, "--config", gw.configPath, ...fleet]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^https:\/\/app\.test\/.*enroll\//);
  const down = runCli(["invite", fresh.name, "--config", gw.configPath, "--store", "postgres://postgres@127.0.0.1:1/otpgate", "--db-key-file", keys]);
  assert.equal(down.status, 2);
  assert.match(down.stderr, /the fleet database cannot be used right now/);
});
