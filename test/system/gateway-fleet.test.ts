// Two gateway instances behind one load balancer, sharing their state in PostgreSQL (issue 11,
// `store:`): a logout or "log out everywhere" on one ends the session on the other within the
// documented delay (a poll a second); a ban earned on one holds on the other; the database down
// means sessions are refused (fail closed, one log line, no crash), and back up it all works
// again without a restart. Each instance has its own otpgate server, user and directory; they
// share the keys file (copied, as an admin would) and the database.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { cookieHeader, cookiesFrom, gatewayStateDir, http, login, loginForm, startGateway, startUpstream, type RunningGateway } from "../helpers/gateway.js";
import { startCluster, type Cluster } from "../helpers/postgres.js";
import { enrolledUser, oathTotp, runCli, systemReady, tempDir } from "../helpers/system.js";
import { codeAt, wrongCode } from "../helpers/otp.js";

const ROLE = { name: "otpgw_role", password: "s3cret-db-pw" };
const randomPort = () => 20000 + Math.floor(Math.random() * 20000);

/** The gateway's role may read, add and delete rows of its two tables, nothing else. */
const GRANTS = `GRANT SELECT, INSERT, DELETE ON otpgate_gateway_revocations, otpgate_gateway_bans TO ${ROLE.name};
GRANT USAGE ON SEQUENCE otpgate_gateway_revocations_id_seq, otpgate_gateway_bans_id_seq TO ${ROLE.name};`;

/** A cluster with a login role for the gateways; migrated (otpgate db migrate, as the superuser) and the gateway's grants given unless `migrated` is false. */
async function cluster(t: TestContext, migrated = true): Promise<Cluster> {
  let db: Cluster;
  for (let attempt = 1; ; attempt++) {
    try {
      db = await startCluster(t, { tcpPort: randomPort(), role: ROLE });
      break;
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
  if (migrated) migrate(t, db);
  return db;
}

function migrate(t: TestContext, db: Cluster): void {
  const r = runCli(["db", "migrate", "--store", db.url, "--db-key-file", join(tempDir(t), "db.key"), "--create-key-file"]);
  assert.equal(r.status, 0, r.stderr);
  db.psql(GRANTS);
}

/** Gateway A, then gateway B with a copy of A's keys file (they open each other's cookies), both on `db`. */
async function pair(t: TestContext, db: Cluster, extra: Record<string, unknown> = {}): Promise<{ a: RunningGateway; b: RunningGateway; url: string }> {
  const app = await startUpstream();
  t.after(() => app.close());
  const url = `postgres://${ROLE.name}@127.0.0.1:${db.port}/otpgate`;
  const start = async (from: string | null) => {
    const dir = tempDir(t);
    const state = gatewayStateDir(dir);
    mkdirSync(state, { recursive: true, mode: 0o700 });
    // The password file and (for B) the keys: put in the gateway user's directory before the start (the rig chowns them).
    writeFileSync(join(state, "db.password"), `${ROLE.password}\n`, { mode: 0o600 });
    if (from) {
      // The instances share the gateway's keys (cookies open on both) and their servers' key (the
      // account fingerprints a session is bound to agree), copied as an admin would.
      copyFileSync(join(gatewayStateDir(from), "gateway.keys"), join(state, "gateway.keys"));
      mkdirSync(join(dir, "server"), { mode: 0o700 });
      copyFileSync(join(from, "server", "server.key"), join(dir, "server", "server.key"));
      chmodSync(join(dir, "server", "server.key"), 0o600);
    }
    const gw = await startGateway(dir, {
      public_url: "http://app.test",
      upstream: `http://127.0.0.1:${app.port}`,
      allowed_hosts: ["app.test"],
      invites_dir: join(dir, "invites"),
      store: url,
      store_password_file: join(state, "db.password"),
      ...extra,
    });
    t.after(() => gw.stop());
    return gw;
  };
  const a = await start(null);
  const b = await start(dirname(a.stateDir));
  return { a, b, url };
}

async function signIn(gw: RunningGateway, user: string, code: string): Promise<string> {
  const r = await login(gw, user, code);
  assert.equal(r.status, 303, r.body);
  return cookiesFrom(r).otpgate_session!;
}

const page = async (gw: RunningGateway, session: string) => (await http(gw.base, "GET", "/reports", { cookie: `otpgate_session=${session}` })).status;

/** The first time (ms after `since`) `probe` is true, polling every 50 ms; null when not within `timeoutMs`. */
async function within(since: number, timeoutMs: number, probe: () => Promise<boolean>): Promise<number | null> {
  while (Date.now() - since < timeoutMs) {
    if (await probe()) return Date.now() - since;
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

describe("two gateway instances on one database (store: postgres)", () => {
  test("a logout on A and a log out everywhere (gateway sessions --revoke) end the session on B within 4 s (a poll a second; slack for a loaded machine)", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const db = await cluster(t);
    const { user, secret } = enrolledUser(t);
    const { a, b } = await pair(t, db);
    // Signed in on A, the cookie works on B (same keys).
    // Three distinct codes, each in the window when used, whatever step boundary the test crosses.
    const s0 = Math.floor(Date.now() / 30_000);
    const first = await signIn(a, user.name, codeAt(secret, s0));
    assert.equal(await page(a, first), 200);
    assert.equal(await page(b, first), 200, "B opens A's session");
    // A single-session logout on A.
    const form = await loginForm(a);
    const out = await http(a.base, "POST", "/_otpgate/logout", { cookie: cookieHeader({ ...form.cookies, otpgate_session: first }) }, new URLSearchParams({ csrf: form.csrf }).toString());
    assert.equal(out.status, 303);
    const since = Date.now();
    assert.equal(await page(a, first), 302, "logged out on A at once");
    const ended = await within(since, 4000, async () => (await page(b, first)) === 302);
    assert.notEqual(ended, null, "the logged-out cookie still works on B after 4 s");
    assert.equal(db.psql("SELECT count(*) FROM otpgate_gateway_revocations WHERE kind = 'session'").trim(), "1", `${a.logs().join("\n")}\nB:\n${b.logs().join("\n")}`);

    // Log out everywhere from the command line (with store: it writes the database).
    const second = await signIn(b, user.name, codeAt(secret, s0 + 1));
    assert.equal(await page(a, second), 200, "A opens B's session");
    const r = runCli(["gateway", "sessions", "--config", a.configPath, "--revoke", user.name]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /logged out everywhere \(in postgres:\/\/otpgw_role@127\.0\.0\.1:\d+\/otpgate\)/);
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(ROLE.password));
    const at = Date.now();
    for (const gw of [a, b]) assert.notEqual(await within(at, 4000, async () => (await page(gw, second)) === 302), null, `log out everywhere not honoured on ${gw === a ? "A" : "B"} within 4 s`);
    const list = runCli(["gateway", "sessions", "--config", b.configPath, "--list"]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${user.name}\\tlogged out everywhere at `, "m"));
    // Signing in again works on both.
    assert.equal(await page(b, await signIn(b, user.name, codeAt(secret, Math.floor(Date.now() / 30_000) === s0 ? s0 - 1 : s0 + 2))), 200);
  });

  test("a ban earned on A (wrong codes) holds on B; the right code is refused there too", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const db = await cluster(t);
    const { user, secret } = enrolledUser(t);
    const { a, b } = await pair(t, db, { regulation: { max_retries: 3, ban_time: "5m" } });
    for (let i = 0; i < 4; i++) {
      const step = Math.floor(Date.now() / 30_000);
      const r = await login(a, user.name, wrongCode(secret, step - 3, step + 3));
      assert.equal(r.status, 401);
    }
    await a.waitForLog(/"banned":"pair address"/);
    // Bans are queued and written in one batch by A's next poll (a second apart; RT-B F1), then read by B's.
    let kinds = "";
    for (let waited = 0; waited < 10_000 && kinds !== "address\npair"; waited += 200) {
      kinds = db.psql("SELECT kind FROM otpgate_gateway_bans ORDER BY kind").trim();
      if (kinds !== "address\npair") await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(kinds, "address\npair", "A's bans reach the database within a few polls");
    await new Promise((r) => setTimeout(r, 2500)); // B polls every second
    const r = await login(b, user.name, oathTotp(secret, 0));
    assert.equal(r.status, 401, "B let the banned pair in");
    const line = await b.waitForLog(/"event":"login","result":"rejected","reason":"banned"/);
    assert.match(line, new RegExp(`"user":"${user.name}"`));
    assert.doesNotMatch(b.logs().join("\n"), /"result":"accepted"/);
  });

  test("the database down: sessions refused (fail closed) with one log line, no crash; back up: the same cookie works without a restart", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const db = await cluster(t);
    const { user, secret } = enrolledUser(t);
    const { a } = await pair(t, db);
    const cookie = await signIn(a, user.name, oathTotp(secret, 0));
    assert.equal(await page(a, cookie), 200);
    await db.stop("immediate");
    const since = Date.now();
    // Within the staleness bound (10 s) plus a poll: refused, and the log says why (no password).
    assert.notEqual(await within(since, 14_000, async () => (await page(a, cookie)) === 302), null, "a session was still accepted 14 s after the database went down");
    const line = await a.waitForLog(/"where":"shared-state"/, 3000);
    assert.match(line, /fail closed/);
    assert.doesNotMatch(a.logs().join("\n"), new RegExp(ROLE.password));
    // A sign-in is refused as unavailable (503), nothing counted, the code not used.
    const refused = await login(a, user.name, oathTotp(secret, 1));
    assert.equal(refused.status, 503, refused.body);
    assert.match(refused.body, /not available right now/);
    assert.equal(a.logs().filter((l) => l.includes('"where":"shared-state"')).length, 1, "one log line for the outage");
    process.kill(a.pid, 0); // alive
    await db.start();
    const back = Date.now();
    assert.notEqual(await within(back, 5000, async () => (await page(a, cookie)) === 200), null, "the session did not work again within 5 s of the database's return");
    await a.waitForLog(/"event":"shared-state","result":"reachable"/);
    assert.equal(await page(a, await signIn(a, user.name, oathTotp(secret, 1))), 200, "the code refused during the outage was not used up");
  });

  test("--check-config reports the shared state; a password file others can read is refused before anything is asked", async (t) => {
    const db = await cluster(t, false);
    const { a } = await pair(t, db);
    // Not migrated: the gateway starts (fail closed) and says what to run; it never creates tables.
    const early = runCli(["gateway", "--config", a.configPath, "--check-config"]);
    assert.equal(early.status, 0, early.stderr);
    assert.match(early.stderr, /warning: store: .*has no otpgate_gateway_revocations or otpgate_gateway_bans .*run otpgate db migrate --store URL/);
    await a.waitForLog(/"where":"shared-state".*run otpgate db migrate/);
    assert.equal(db.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'otpgate_gateway%'").trim(), "0");
    migrate(t, db);
    const ok = runCli(["gateway", "--config", a.configPath, "--check-config"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /revocations and bans shared in postgres:\/\/otpgw_role@127\.0\.0\.1:\d+\/otpgate: 0 revoked session\(s\), 0 user\(s\) logged out everywhere, 0 ban\(s\) in force/);
    chmodSync(join(a.stateDir, "db.password"), 0o644);
    const bad = runCli(["gateway", "--config", a.configPath, "--check-config"]);
    assert.equal(bad.status, 2, bad.stdout);
    assert.match(bad.stderr, /store_password_file .*db\.password must not be readable or writable by others/);
    assert.doesNotMatch(bad.stderr + bad.stdout, new RegExp(ROLE.password));
  });
});
