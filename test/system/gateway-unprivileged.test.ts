// The gateway runs unprivileged (issue 10): started as root with `user:` it binds its port, then
// becomes that user for good, and asks otpgate server (decision_socket) for every login, session
// check and enrollment. Sign-in, replay and invitation enrollment go through the server; the gateway
// process is not root (/proc/PID/status), cannot open a user's state file, and cannot become root
// again; root without `user:` is refused with what to configure; a server that is down makes
// sign-ins fail with a 503 page (no crash) until it is back.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { cookieHeader, cookiesFrom, http, login, startGateway, startUpstream } from "../helpers/gateway.js";
import { enrolledUser, oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

/** Uid/Gid/Groups lines of /proc/PID/status: [real, effective, saved, filesystem] ids, and the groups. */
function idsOf(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const line = (name: string) => (new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "").trim().split(/\s+/).filter(Boolean).map(Number);
  return { uid: line("Uid"), gid: line("Gid"), groups: line("Groups") };
}

describe("the gateway as an unprivileged user with otpgate server", () => {
  test("sign-in and replay through the server; the process runs as its user for good and cannot open a user's state file", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const dir = tempDir(t);
    const app = await startUpstream();
    t.after(() => app.close());
    const { user, secret } = enrolledUser(t);
    const gw = await startGateway(dir, { public_url: "http://app.test", upstream: `http://127.0.0.1:${app.port}`, allowed_hosts: ["app.test"] });
    t.after(() => gw.stop());
    const me = gw.gatewayUser!;

    // The process: real, effective, saved and filesystem uid and gid are the gateway's user; no root group.
    const ids = idsOf(gw.pid);
    assert.deepEqual(ids.uid, [me.uid, me.uid, me.uid, me.uid], "Uid line");
    assert.deepEqual(ids.gid, [me.gid, me.gid, me.gid, me.gid], "Gid line");
    assert.ok(!ids.groups.includes(0), `no root group among ${ids.groups.join(" ")}`);
    assert.ok(me.uid !== 0 && me.gid !== 0);
    // Its files are its own.
    assert.equal(statSync(join(gw.stateDir, "gateway.keys")).uid, me.uid, "keys_file written as the gateway's user");

    // With its uid, a user's state file cannot even be opened.
    const state = join(user.home, ".google_authenticator");
    const asGateway = spawnSync("/bin/cat", [state], { uid: me.uid, gid: me.gid, encoding: "utf8" });
    assert.notEqual(asGateway.status, 0, "cat as the gateway's uid");
    assert.match(asGateway.stderr, /Permission denied/);
    const before = readFileSync(state, "latin1");

    const code = oathTotp(secret);
    const ok = await login(gw, user.name, code);
    assert.equal(ok.status, 303, ok.body);
    const session = cookiesFrom(ok).otpgate_session!;
    const page = await http(gw.base, "GET", "/", { host: "app.test", cookie: cookieHeader({ otpgate_session: session }) });
    assert.equal(page.status, 200);
    assert.match(page.body, new RegExp(`upstream page for ${user.name}`));
    assert.notEqual(readFileSync(state, "latin1"), before, "the server recorded the used code (DISALLOW_REUSE) in the state file");
    assert.equal(statSync(state).uid, user.uid, "still the user's file");

    const replay = await login(gw, user.name, code);
    assert.equal(replay.status, 401, "the same code again is refused");
    await gw.waitForLog(/"reason":"replay"/);
    // The decisions were the server's: it logged them (one JSON line each), the gateway only asked.
    const serverLog = gw.server!.logs().join("\n");
    assert.match(serverLog, new RegExp(user.name), "the server decided for this user");
    assert.doesNotMatch(serverLog + gw.logs().join("\n"), new RegExp(code), "never a code in a log");
  });

  test("invitation enrollment through the server: the state file is written as the user, never by the gateway", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const dir = tempDir(t);
    const gw = await startGateway(dir, { public_url: "https://app.test", allowed_hosts: ["app.test"], invites_dir: join(dir, "invites") });
    t.after(() => gw.stop());
    const user = throwawayUser(t);
    const inv = runCli(["invite", user.name, "--config", gw.configPath]);
    assert.equal(inv.status, 0, inv.stderr);
    const path = new URL(inv.stdout.trim()).pathname;
    assert.equal(statSync(join(dir, "invites")).uid, 0, "invitations stay root's (the server reads them)");

    const form = await http(gw.base, "GET", path);
    assert.equal(form.status, 200, form.body);
    const secret = /<code>([A-Z2-7 ]+)<\/code>/.exec(form.body)![1]!.replace(/ /g, "");
    const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(form.body)![1]!;
    const body = new URLSearchParams({ csrf: field("csrf"), draft: field("draft"), code: oathTotp(secret) }).toString();
    const done = await http(gw.base, "POST", path, { cookie: cookieHeader(cookiesFrom(form)) }, body);
    assert.equal(done.status, 200, done.body);
    const state = join(user.home, ".google_authenticator");
    assert.equal(statSync(state).uid, user.uid);
    assert.equal(statSync(state).mode & 0o777, 0o400);
    assert.equal(readFileSync(state, "latin1").split("\n")[0], secret);
    assert.equal((await http(gw.base, "GET", path)).status, 404, "the invitation is used up");
    assert.equal((await login(gw, user.name, oathTotp(secret))).status, 303, "the new secret signs in");
  });

  test("root without user: is refused with what to configure (exit 2), before any file is created", (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    const config = join(dir, "gw.yaml");
    writeFileSync(config, `public_url: http://app.test\nlisten: 127.0.0.1:${41000 + Math.floor(Math.random() * 15000)}\nkeys_file: ${join(dir, "gateway.keys")}\n`);
    const r = runCli(["gateway", "--config", config]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /must not run as root\. Add "user: otpgate-gw"/);
    assert.match(r.stderr, /decision_socket: \/run\/otpgate\/server\.sock/);
    assert.equal(existsSync(join(dir, "gateway.keys")), false, "no keys file created");
    // user: without decision_socket cannot work (the user cannot read state files): a configuration error.
    writeFileSync(config, `public_url: http://app.test\nuser: nobody\nkeys_file: ${join(dir, "gateway.keys")}\n`);
    const check = runCli(["gateway", "--config", config, "--check-config"]);
    assert.equal(check.status, 2);
    assert.match(check.stderr, /user: needs decision_socket/);
  });

  test("the server down: sign-in refused with a 503 page, the gateway keeps running, and it works again when the server is back", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const dir = tempDir(t);
    const { user, secret } = enrolledUser(t);
    const gw = await startGateway(dir, { public_url: "http://app.test", allowed_hosts: ["app.test"] });
    t.after(() => gw.stop());
    await gw.server!.stop();
    const state = join(user.home, ".google_authenticator");
    const before = readFileSync(state, "latin1");
    const down = await login(gw, user.name, oathTotp(secret));
    assert.equal(down.status, 503, down.body);
    assert.match(down.body, /sign-in service is not available right now; nothing was checked/);
    await gw.waitForLog(/"reason":"decision-service-unavailable"/);
    assert.equal(readFileSync(state, "latin1"), before, "nothing changed");
    assert.equal(spawnSync("kill", ["-0", String(gw.pid)]).status, 0, "the gateway is still running");
    await gw.server!.restart();
    const back = await login(gw, user.name, oathTotp(secret));
    assert.equal(back.status, 303, back.body);
  });

  test("otpgate invite refuses an invites_dir below a directory the gateway's user owns (it could plant invitations the server would honour); nothing is written", async (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    const gw = await startGateway(dir, { public_url: "https://app.test", allowed_hosts: ["app.test"], invites_dir: join(dir, "invites") });
    t.after(() => gw.stop());
    const user = throwawayUser(t);
    const planted = join(gw.stateDir, "invites");
    const config = join(dir, "planted.yaml");
    writeFileSync(config, readFileSync(gw.configPath, "utf8").replace(/^invites_dir: .*$/m, `invites_dir: ${planted}`));
    const r = runCli(["invite", user.name, "--config", config]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`invites_dir ${planted}: ${gw.stateDir} is owned by uid ${gw.gatewayUser!.uid}`));
    assert.equal(existsSync(planted), false, "no invitation written there");
  });
});
