// RT2 F1 (red team, issue 11 item g): a logout decided while the database is down must survive a
// restart of that instance before the database returns: it is journaled in the gateway's state
// directory, holds on that instance at once after the restart, and reaches the others when the
// database is back. (On the code before the fix: "the logged-out cookie works again on B", 200 !== 302.)
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { cookieHeader, cookiesFrom, gatewayStateDir, http, login, loginForm, startGateway, startUpstream, type RunningGateway } from "../helpers/gateway.js";
import { startCluster } from "../helpers/postgres.js";
import { enrolledUser, oathTotp, runCli, tempDir } from "../helpers/system.js";

const ROLE = { name: "otpgw_role", password: "s3cret-db-pw" };
const GRANTS = `GRANT SELECT, INSERT, DELETE ON otpgate_gateway_revocations, otpgate_gateway_bans TO ${ROLE.name};
GRANT USAGE ON SEQUENCE otpgate_gateway_revocations_id_seq, otpgate_gateway_bans_id_seq TO ${ROLE.name};`;
const page = async (gw: RunningGateway, s: string) => (await http(gw.base, "GET", "/reports", { cookie: `otpgate_session=${s}` })).status;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a logout on A while the database is down survives A's restart: held on A at once, on B once the database is back", async (t) => {
  const db = await startCluster(t, { tcpPort: 41000 + Math.floor(Math.random() * 20000), role: ROLE });
  const m = runCli(["db", "migrate", "--store", db.url, "--db-key-file", join(tempDir(t), "db.key"), "--create-key-file"]);
  assert.equal(m.status, 0, m.stderr);
  db.psql(GRANTS);
  const { user, secret } = enrolledUser(t);
  const app = await startUpstream();
  t.after(() => app.close());
  const url = `postgres://${ROLE.name}@127.0.0.1:${db.port}/otpgate`;
  const config = (dir: string) => ({
    public_url: "http://app.test",
    upstream: `http://127.0.0.1:${app.port}`,
    allowed_hosts: ["app.test"],
    invites_dir: join(dir, "invites"),
    store: url,
    store_password_file: join(gatewayStateDir(dir), "db.password"),
  });
  const prep = (from: string | null) => {
    const dir = tempDir(t);
    const state = gatewayStateDir(dir);
    mkdirSync(state, { recursive: true, mode: 0o700 });
    writeFileSync(join(state, "db.password"), `${ROLE.password}\n`, { mode: 0o600 });
    if (from) {
      copyFileSync(join(gatewayStateDir(from), "gateway.keys"), join(state, "gateway.keys"));
      mkdirSync(join(dir, "server"), { mode: 0o700 });
      copyFileSync(join(from, "server", "server.key"), join(dir, "server", "server.key"));
      chmodSync(join(dir, "server", "server.key"), 0o600);
    }
    return dir;
  };
  const dirA = prep(null);
  let a = await startGateway(dirA, config(dirA));
  t.after(() => a.stop());
  const dirB = prep(dirname(a.stateDir));
  const b = await startGateway(dirB, config(dirB));
  t.after(() => b.stop());
  const r = await login(a, user.name, oathTotp(secret, 0));
  assert.equal(r.status, 303, r.body);
  const cookie = cookiesFrom(r).otpgate_session!;
  assert.equal(await page(b, cookie), 200);
  // The database goes down; within the staleness window the user logs out on A.
  await db.stop("immediate");
  const form = await loginForm(a);
  const out = await http(a.base, "POST", "/_otpgate/logout", { cookie: cookieHeader({ ...form.cookies, otpgate_session: cookie }) }, new URLSearchParams({ csrf: form.csrf }).toString());
  assert.equal(out.status, 303, "the logout is answered");
  assert.equal(await page(a, cookie), 302, "the logged-out cookie is refused on A at once");
  const journal = join(a.stateDir, "gateway.pending-revocations");
  assert.ok(existsSync(journal), "the logout is journaled while the database is down");
  assert.equal(statSync(journal).mode & 0o777, 0o600, "the journal is private");
  // A is restarted (deploy, crash, reboot) before the database returns.
  a.stop();
  await sleep(1500);
  a = await startGateway(dirA, config(dirA));
  assert.equal(await page(a, cookie), 302, "after A's restart, with the database still down, the cookie is refused on A");
  await db.start();
  await sleep(3000);
  const onA = await page(a, cookie);
  const onB = await page(b, cookie);
  assert.notEqual(db.psql("SELECT count(*) FROM otpgate_gateway_revocations").trim(), "0", "the journaled logout reached the database");
  assert.ok(!existsSync(journal), "the journal is emptied once the database has it");
  assert.equal(onB, 302, "the logged-out cookie works again on B");
  assert.equal(onA, 302, "the logged-out cookie works again on A");
});
