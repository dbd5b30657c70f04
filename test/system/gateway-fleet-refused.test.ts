// RT2 F2 (red team, issue 11 item g): a ban the database refuses (the gateway's role lacks INSERT
// on otpgate_gateway_bans) must not stop the reads (on the old code every later poll stopped and the
// instance failed closed for everyone: "the valid session of another user is refused on A", 302 !==
// 200); it is logged as a configuration error, the ban holds on this instance, and --check-config
// names the missing privilege.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { cookiesFrom, gatewayStateDir, http, login, startGateway, startUpstream, type RunningGateway } from "../helpers/gateway.js";
import { startCluster } from "../helpers/postgres.js";
import { enrolledUser, oathTotp, runCli, tempDir } from "../helpers/system.js";

const ROLE = { name: "otpgw_role", password: "s3cret-db-pw" };
export const GRANTS = `GRANT SELECT, INSERT, DELETE ON otpgate_gateway_revocations, otpgate_gateway_bans TO ${ROLE.name};
GRANT USAGE ON SEQUENCE otpgate_gateway_revocations_id_seq, otpgate_gateway_bans_id_seq TO ${ROLE.name};`;
const page = async (gw: RunningGateway, s: string) => (await http(gw.base, "GET", "/reports", { cookie: `otpgate_session=${s}` })).status;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a ban the database refuses (no INSERT privilege) does not stop the polls; logged as a configuration error; held here; --check-config names it", async (t) => {
  const db = await startCluster(t, { tcpPort: 41000 + Math.floor(Math.random() * 20000), role: ROLE });
  const m = runCli(["db", "migrate", "--store", db.url, "--db-key-file", join(tempDir(t), "db.key"), "--create-key-file"]);
  assert.equal(m.status, 0, m.stderr);
  db.psql(
    `GRANT SELECT, INSERT, DELETE ON otpgate_gateway_revocations TO ${ROLE.name}; GRANT SELECT, DELETE ON otpgate_gateway_bans TO ${ROLE.name}; GRANT USAGE ON SEQUENCE otpgate_gateway_revocations_id_seq TO ${ROLE.name};`,
  );
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
    regulation: { max_retries: 3, ban_time: "5m" },
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
  // An attacker (no account needed) earns a ban on A with wrong codes for a made-up user.
  const bannedLines = () => a.logs().filter((l) => l.includes('"reason":"banned"')).length;
  for (let i = 0; i < 5; i++) await login(a, "nosuchuser", "000000");
  assert.ok(bannedLines() > 0, "the attacker is banned on A");
  await sleep(12_000);
  const onA = await page(a, cookie);
  const onB = await page(b, cookie);
  const lines = a.logs().filter((l) => l.includes("shared-state"));
  assert.equal(onA, 200, "the valid session of another user is refused on A: one unwritable ban stopped every poll");
  assert.equal(onB, 200);
  assert.ok(
    lines.some((l) => l.includes("configuration error") && l.includes("otpgate_gateway_bans") && l.includes("kept here only")),
    lines.join("\n"),
  );
  assert.ok(!lines.some((l) => l.includes("cannot be reached")), lines.join("\n"));
  const n = bannedLines();
  await login(a, "nosuchuser", "000000");
  assert.equal(bannedLines(), n + 1, "the ban that could not be published still holds on A");
  assert.equal(db.psql("SELECT count(*) FROM otpgate_gateway_bans").trim(), "0", "nothing was written");
  const check = runCli(["gateway", "--config", a.configPath, "--check-config"]);
  assert.equal(check.status, 2, check.stdout + check.stderr);
  assert.match(check.stderr, /lacks INSERT ON otpgate_gateway_bans, USAGE ON SEQUENCE otpgate_gateway_bans_id_seq/);
  db.psql(`GRANT INSERT ON otpgate_gateway_bans TO ${ROLE.name}; GRANT USAGE ON SEQUENCE otpgate_gateway_bans_id_seq TO ${ROLE.name};`);
  const fixed = runCli(["gateway", "--config", a.configPath, "--check-config"]);
  assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr);
});
