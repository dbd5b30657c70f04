// Sessions that stay ended, against a running gateway: a logout survives a restart; otpgate gateway
// sessions --revoke ends a live session and its WebSocket tunnel within a couple of seconds;
// invite --replace ends the user's sessions; key rotation keeps old cookies working while new ones
// carry the new key id, and retiring the old key ends them.
import assert from "node:assert/strict";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { WS_KEY, gatewayStateDir, cookieHeader, cookiesFrom, http, login, loginForm, startGateway, startUpstream, wsTextFrame, type RunningGateway } from "../helpers/gateway.js";
import { enrolledUser, oathTotp, runCli, systemReady, tempDir } from "../helpers/system.js";

async function rig(t: TestContext, extra: Record<string, unknown> = {}) {
  const dir = tempDir(t);
  const app = await startUpstream();
  t.after(() => app.close());
  const settings = { public_url: "http://app.test", upstream: `http://127.0.0.1:${app.port}`, allowed_hosts: ["app.test"], invites_dir: join(dir, "invites"), ...extra };
  const start = async () => {
    const gw = await startGateway(dir, settings);
    t.after(() => gw.stop());
    return gw;
  };
  return { dir, app, start, config: join(dir, "gateway.yaml") };
}

async function signIn(gw: RunningGateway, user: string, code: string): Promise<string> {
  const r = await login(gw, user, code);
  assert.equal(r.status, 303, r.body);
  return cookiesFrom(r).otpgate_session!;
}

const page = async (gw: RunningGateway, session: string) => (await http(gw.base, "GET", "/reports", { cookie: `otpgate_session=${session}` })).status;

/** An open WebSocket tunnel through the gateway (echo checked); `closed` resolves with the ms it stayed open after `since()`. */
async function tunnel(gw: RunningGateway, session: string): Promise<{ socket: Socket; closedAfter: (since: number, timeoutMs: number) => Promise<number | null> }> {
  const socket = connect(gw.port, "127.0.0.1");
  let data = "";
  let closedAt: number | null = null;
  socket.on("close", () => (closedAt = Date.now()));
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () =>
      socket.write(
        `GET /socket HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\nCookie: otpgate_session=${session}\r\n\r\n`,
      ),
    );
    socket.on("data", (d: Buffer) => {
      data += d.toString("latin1");
      if (data.includes("\r\n\r\n") && !data.startsWith("HTTP/1.1 101")) reject(new Error(`no tunnel: ${data.split("\r\n")[0]}`));
      if (data.startsWith("HTTP/1.1 101") && data.endsWith("\r\n\r\n")) socket.write(wsTextFrame("hello"));
      if (data.includes("hello")) resolve();
    });
    setTimeout(() => reject(new Error("tunnel not up in 5 s")), 5000);
  });
  return {
    socket,
    closedAfter: async (since, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (closedAt === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return closedAt === null ? null : closedAt - since;
    },
  };
}

describe("gateway sessions that stay ended", () => {
  test("a logged-out cookie stays refused after the gateway restarts; other sessions survive the restart", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const { start } = await rig(t);
    const gw = await start();
    const a = await signIn(gw, user.name, oathTotp(secret, 0));
    const b = await signIn(gw, user.name, oathTotp(secret, 1));
    const form = await loginForm(gw);
    const out = await http(gw.base, "POST", "/_otpgate/logout", { cookie: cookieHeader({ ...form.cookies, otpgate_session: a }) }, new URLSearchParams({ csrf: form.csrf }).toString());
    assert.equal(out.status, 303);
    assert.equal(await page(gw, a), 302, "logged out");
    gw.stop();
    await new Promise((r) => setTimeout(r, 300));
    const again = await start();
    assert.equal(await page(again, a), 302, "a logged-out cookie works again after a restart");
    assert.equal(await page(again, b), 200, "the other session survives the restart");
  });

  test("gateway sessions --revoke USER ends a live session and its open WebSocket within seconds (not at session.recheck); signing in again works", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const other = enrolledUser(t);
    const { start, config } = await rig(t);
    const gw = await start();
    const session = await signIn(gw, user.name, oathTotp(secret, 0));
    const bystander = await signIn(gw, other.user.name, oathTotp(other.secret, 0));
    assert.equal(await page(gw, session), 200);
    const ws = await tunnel(gw, session);
    const ws2 = await tunnel(gw, bystander);
    const r = runCli(["gateway", "sessions", "--revoke", user.name, "--config", config]);
    assert.equal(r.status, 0, r.stderr);
    // Counted from when the command returned (the revocation is written), not from its start (a
    // loaded machine takes a second or more to start node); the gateway checks its sessions file
    // every second, and session.recheck (60 s here) is the bound this is about.
    const closedIn = await ws.closedAfter(Date.now(), 6000);
    assert.ok(closedIn !== null && closedIn < 4000, `the tunnel closed ${closedIn} ms after the revocation`);
    assert.equal(await page(gw, session), 302, "the session ended");
    assert.equal(await page(gw, bystander), 200, "another user's session is untouched");
    assert.equal(await ws2.closedAfter(Date.now(), 100), null, "and so is their tunnel");
    ws2.socket.destroy();
    const fresh = await signIn(gw, user.name, oathTotp(secret, 1));
    assert.equal(await page(gw, fresh), 200, "signing in again works");
    await gw.waitForLog(/"event":"session/).catch(() => undefined);
  });

  test("invite --replace ends the user's sessions at once (a lost phone)", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const { start, config } = await rig(t);
    const gw = await start();
    const session = await signIn(gw, user.name, oathTotp(secret, 0));
    const ws = await tunnel(gw, session);
    const r = runCli(["invite", user.name, "--replace", "--config", config]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /gateway sessions have ended/);
    // From the command's return (see above): seconds, not session.recheck's 60 s.
    const closedIn = await ws.closedAfter(Date.now(), 6000);
    assert.ok(closedIn !== null && closedIn < 4000, `the tunnel closed ${closedIn} ms after the invitation`);
    assert.equal(await page(gw, session), 302);
  });

  test("completing a replacing enrollment ends the sessions signed in with the old secret at once (also ones started after the invitation)", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const { start, config } = await rig(t);
    const gw = await start();
    const inv = runCli(["invite", user.name, "--replace", "--config", config]);
    assert.equal(inv.status, 0, inv.stderr);
    await new Promise((r) => setTimeout(r, 20));
    const session = await signIn(gw, user.name, oathTotp(secret, 0)); // after the invitation: still valid
    assert.equal(await page(gw, session), 200);
    const ws = await tunnel(gw, session);
    const path = new URL(inv.stdout.trim()).pathname;
    const form = await http(gw.base, "GET", path);
    assert.equal(form.status, 200, form.body);
    const newSecret = /<code>([A-Z2-7 ]+)<\/code>/.exec(form.body)![1]!.replace(/ /g, "");
    const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(form.body)![1]!;
    const at = Date.now();
    const done = await http(
      gw.base,
      "POST",
      path,
      { cookie: cookieHeader(cookiesFrom(form)) },
      new URLSearchParams({ csrf: field("csrf"), draft: field("draft"), code: oathTotp(newSecret) }).toString(),
    );
    assert.equal(done.status, 200, done.body);
    assert.equal(await page(gw, session), 302, "the old secret's session ended with the enrollment");
    const closedIn = await ws.closedAfter(at, 2000);
    assert.ok(closedIn !== null && closedIn < 1000, `its tunnel closed (${closedIn} ms)`);
    const fresh = await signIn(gw, user.name, oathTotp(newSecret, 1));
    assert.equal(await page(gw, fresh), 200, "the new secret signs in");
    assert.match(field("draft"), /^v1\.1\./, "the draft is sealed with a key id (purpose enroll-draft)");
  });

  test("re-enrolling with otpgate enroll --force (a new secret) ends the old sessions at their next check (session.recheck)", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    // session.recheck is read by the strict configuration of fix/gw-config (its help names it).
    if (!/recheck/.test(runCli(["gateway", "--help"]).stdout)) return void t.skip("session.recheck is not configurable on this branch yet (fix/gw-config)");
    const { user, secret } = enrolledUser(t);
    const { start } = await rig(t, { session: { idle: "30m", absolute: "12h", recheck: "1s" } });
    const gw = await start();
    const session = await signIn(gw, user.name, oathTotp(secret, 0));
    const ws = await tunnel(gw, session);
    const again = runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-u", "-q", "-f"]);
    assert.equal(again.status, 0, again.stderr);
    const at = Date.now();
    // The first request after recheck starts the check; the session ends when it sees the new secret.
    let status = 200;
    while (status === 200 && Date.now() - at < 5000) {
      await new Promise((r) => setTimeout(r, 200));
      status = await page(gw, session);
    }
    assert.equal(status, 302, "the session of the old secret ended");
    assert.ok(Date.now() - at < 3000, `within about session.recheck (${Date.now() - at} ms)`);
    assert.notEqual(await ws.closedAfter(at, 1000), null, "and its tunnel closed");
    await gw.waitForLog(/"event":"session-ended","reason":"secret-changed"/);
  });

  test("key rotation: a cookie from before still works, new ones carry the new key id; retiring the old key ends it", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const { start, config } = await rig(t);
    const gw = await start();
    const before = await signIn(gw, user.name, oathTotp(secret, 0));
    assert.match(before, /^v1\.1\./);
    const rotated = runCli(["gateway", "keys", "--rotate", "--config", config]);
    assert.equal(rotated.status, 0, rotated.stderr);
    await new Promise((r) => setTimeout(r, 1500));
    const after = await signIn(gw, user.name, oathTotp(secret, 1));
    assert.match(after, /^v1\.2\./, "sealed with the new key");
    assert.equal(await page(gw, before), 200, "the cookie from before the rotation still works");
    assert.equal(await page(gw, after), 200);
    const retired = runCli(["gateway", "keys", "--retire-old", "--force", "--config", config]);
    assert.equal(retired.status, 0, retired.stderr);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await page(gw, before), 302, "sealed with the retired key: ended");
    assert.equal(await page(gw, after), 200);
  });

  test("the gateway refuses to start on a corrupt or loose keys or sessions file, saying which and what to do, and changes neither", async (t) => {
    if (!systemReady(t, [])) return;
    const { start, dir } = await rig(t);
    const gw = await start(); // creates the keys file
    gw.stop();
    const keys = join(gatewayStateDir(dir), "gateway.keys");
    const sessions = join(gatewayStateDir(dir), "gateway.sessions");
    writeFileSync(sessions, "{broken", { mode: 0o600 });
    await assert.rejects(start(), /otpgate gateway: \/\S+\/gateway\.sessions is not a sessions file otpgate wrote \(not JSON\); fix or delete it[^\n]*\)\n/, "the user's error, not an internal one");
    assert.equal(readFileSync(sessions, "utf8"), "{broken");
    writeFileSync(sessions, JSON.stringify({ v: 1, revoked: {}, validAfter: {} }), { mode: 0o600 });
    chmodSync(keys, 0o644);
    const keyText = readFileSync(keys, "latin1");
    await assert.rejects(start(), /otpgate gateway: \/\S+\/gateway\.keys \(the gateway's keys\) has mode 0644; it must be readable by its owner only: chmod 600 \S+\n/);
    assert.equal(readFileSync(keys, "latin1"), keyText);
    const check = runCli(["gateway", "--config", join(dir, "gateway.yaml"), "--check-config"]);
    assert.equal(check.status, 2, "--check-config finds it too");
    assert.match(check.stderr, /gateway\.keys \(the gateway's keys\) has mode 0644/);
    chmodSync(keys, 0o600);
    const good = runCli(["gateway", "--config", join(dir, "gateway.yaml"), "--check-config"]);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /1 key\(s\) in \S+gateway\.keys, id 1 seals; 0 revoked session\(s\) and 0 user\(s\) logged out everywhere/);
    writeFileSync(keys, "otpgate-gateway-keys 1\n");
    await assert.rejects(start(), /gateway\.keys is not a keys file otpgate wrote \(no lock secret\); restore it from a backup, or delete it/);
    assert.equal(readFileSync(keys, "latin1"), "otpgate-gateway-keys 1\n");
  });
});
