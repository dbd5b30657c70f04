// otpgate server's unix-socket API through the real client: decisions (accept, replay, wrong,
// unknown, rate limit ignored for the gateway), account fingerprints, invitations and enrollment
// written as the user, strict input, who may connect, and the log (never a code or token).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync, statSync, symlinkSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { describe, test } from "node:test";
import { DecisionClient } from "../../src/adapters/server/client.js";
import { DecisionServiceUnavailable } from "../../src/ports/decision-service.js";
import { createInvite } from "../../src/stores/invite-store.js";
import { startServer } from "../helpers/server.js";
import { CLI, enrolledUser, oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

function raw(socketPath: string, method: string, path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("otpgate server: the unix-socket API", () => {
  test("decide: right code accepted, the same code again refused (replay), wrong and unknown refused; the log has no code", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const server = await startServer(t);
    assert.deepEqual(await server.client.health(), { ok: true, version: (await server.client.health()).version });
    const code = oathTotp(secret);
    const timings: number[] = [];
    const t0 = performance.now();
    const first = await server.client.decide({ user: user.name, code, service: "gateway", clientAddress: "192.0.2.7" });
    timings.push(performance.now() - t0);
    assert.deepEqual(first, { outcome: "accepted", via: "totp" });
    assert.deepEqual(await server.client.decide({ user: user.name, code, service: "gateway" }), { outcome: "rejected", reason: "replay" });
    const wrong = code === "000000" ? "111111" : "000000";
    assert.equal((await server.client.decide({ user: user.name, code: wrong, service: "gateway" })).outcome, "rejected");
    assert.deepEqual(await server.client.decide({ user: "nosuchuser-otpgt", code: "123456", service: "gateway" }), { outcome: "rejected", reason: "unknown-user" });
    await server.stop();
    const decisions = server.lines().filter((l) => l.event === "decide");
    assert.equal(decisions.length, 4, server.stdout());
    assert.equal(decisions[0]!.result, "accepted");
    assert.equal(decisions[0]!.rhost, "192.0.2.7");
    assert.ok(!server.stdout().includes(code) && !server.stdout().includes(wrong), "no code in the log");
  });

  test("decide with rateLimit ignore neither checks nor spends RATE_LIMIT; apply does", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const user = throwawayUser(t);
    assert.equal(runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-r", "2", "-R", "300", "-q"]).status, 0);
    const state = join(user.home, ".google_authenticator");
    const server = await startServer(t);
    for (let i = 0; i < 4; i++) await server.client.decide({ user: user.name, code: "000001", service: "gateway", rateLimit: "ignore" });
    assert.ok(!readFileSync(state, "latin1").includes('" RATE_LIMIT 2 300 '), "no attempt recorded with rateLimit ignore");
    const code = oathTotp(readFileSync(state, "latin1").split("\n")[0]!);
    assert.deepEqual(await server.client.decide({ user: user.name, code, service: "gateway", rateLimit: "ignore" }), { outcome: "accepted", via: "totp" });
  });

  test("account: unknown, not-enrolled, enrolled with a stable keyed fingerprint that changes with the secret, unusable", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const user = throwawayUser(t);
    const server = await startServer(t);
    assert.deepEqual(await server.client.account({ user: "nosuchuser-otpgt" }), { account: "unknown" });
    assert.deepEqual(await server.client.account({ user: user.name }), { account: "not-enrolled" });
    assert.equal(runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-q"]).status, 0);
    const a = await server.client.account({ user: user.name });
    assert.equal(a.account, "enrolled");
    const fp = (a as { fingerprint: string }).fingerprint;
    assert.match(fp, /^[A-Za-z0-9_-]{43}$/);
    const secret = readFileSync(join(user.home, ".google_authenticator"), "latin1").split("\n")[0]!;
    assert.ok(!fp.includes(secret));
    assert.deepEqual(await server.client.account({ user: user.name }), a, "stable");
    const key = statSync(join(server.stateDir, "server.key"));
    assert.equal(key.mode & 0o777, 0o600);
    assert.equal(key.uid, 0);
    // The same key after a restart: the same fingerprint.
    await server.stop();
    const again = await startServer(t, ["--state-dir", server.stateDir]);
    assert.deepEqual(await again.client.account({ user: user.name }), a, "stable across restarts (the key file is kept)");
    assert.equal(runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-q", "-f"]).status, 0);
    const b = await again.client.account({ user: user.name });
    assert.equal(b.account, "enrolled");
    assert.notEqual((b as { fingerprint: string }).fingerprint, fp, "a new secret, a new fingerprint");
    spawnSync("chmod", ["0644", join(user.home, ".google_authenticator")]);
    const c = await again.client.account({ user: user.name });
    assert.equal(c.account, "unusable");
  });

  test("invite + enroll: the state file is written as the user with the invitation defaults; the link works once", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const user = throwawayUser(t);
    const server = await startServer(t);
    const { token, invite } = createInvite(server.invitesDir, user.name, { nowMs: Date.now(), ttlMs: 3_600_000, replace: false });
    const found = await server.client.invite({ token });
    assert.deepEqual(found, { invite: { id: invite.id, user: user.name, replace: false, expiresAt: invite.expiresAt } });
    assert.deepEqual(await server.client.invite({ token: "x".repeat(43) }), { invite: null });
    const reply = await server.client.enroll({ token, secret: SECRET, scratchCodes: [12345678, 87654321] });
    assert.deepEqual(reply, { result: "enrolled", user: user.name, replaced: false });
    const state = join(user.home, ".google_authenticator");
    const st = lstatSync(state);
    assert.equal(st.uid, user.uid, "owned by the user");
    assert.equal(st.gid, user.gid);
    assert.equal(st.mode & 0o777, 0o400);
    const text = readFileSync(state, "latin1");
    assert.equal(text.split("\n")[0], SECRET);
    assert.match(text, /" RATE_LIMIT 3 30\n/);
    assert.match(text, /" DISALLOW_REUSE\n/);
    assert.match(text, /" TOTP_AUTH\n/);
    assert.match(text, /\n12345678\n87654321\n$/);
    assert.deepEqual(await server.client.enroll({ token, secret: SECRET, scratchCodes: [] }), { result: "gone" }, "used once");
    assert.deepEqual(await server.client.decide({ user: user.name, code: oathTotp(SECRET), service: "gateway" }), { outcome: "accepted", via: "totp" });
    const afterLogin = readFileSync(state, "latin1");
    // An invitation for an enrolled user that is not a replacement: exists, nothing changes.
    const second = createInvite(server.invitesDir, user.name, { nowMs: Date.now(), ttlMs: 3_600_000, replace: false });
    assert.deepEqual(await server.client.enroll({ token: second.token, secret: "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK", scratchCodes: [] }), { result: "exists" });
    assert.equal(readFileSync(state, "latin1"), afterLogin, "unchanged");
    assert.ok(!server.stdout().includes(token) && !server.stdout().includes(SECRET), "no token or secret in the log");
  });

  test("enroll never writes as root: a state path through a symlink the user planted to a root-only directory creates nothing there", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const user = throwawayUser(t);
    const rootOnly = tempDir(t, "otpgate-rootonly-");
    symlinkSync(rootOnly, join(user.home, ".otp"));
    spawnSync("chown", ["-h", `${user.uid}:${user.gid}`, join(user.home, ".otp")]);
    const server = await startServer(t, ["--state", "~/.otp/state"]);
    const { token } = createInvite(server.invitesDir, user.name, { nowMs: Date.now(), ttlMs: 3_600_000, replace: false });
    await assert.rejects(server.client.enroll({ token, secret: SECRET, scratchCodes: [] }), DecisionServiceUnavailable);
    assert.ok(!existsSync(join(rootOnly, "state")), "nothing created in the root-only directory");
    assert.ok((await server.client.invite({ token })).invite !== null, "the invitation is released for another try");
  });

  test("strict input: unknown fields, bad names, bad codes, bad JSON, big bodies, wrong methods and types are refused without effect", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const server = await startServer(t);
    const s = server.socket;
    const cases: [string, string, string, number, RegExp][] = [
      ["POST", "/v1/decide", JSON.stringify({ user: "root", code: "123456", service: "gateway", extra: 1 }), 400, /extra/],
      ["POST", "/v1/decide", JSON.stringify({ user: "../etc", code: "123456", service: "gateway" }), 400, /user/],
      ["POST", "/v1/decide", JSON.stringify({ user: "root", code: "12345", service: "gateway" }), 400, /code: must be 6-8 digits/],
      ["POST", "/v1/decide", "{", 400, /not JSON/],
      ["POST", "/v1/decide", JSON.stringify({ user: "root", code: "123456", service: "gateway", pad: "x".repeat(20_000) }), 413, /larger/],
      ["GET", "/v1/decide", "", 405, /POST/],
      ["POST", "/v1/nothing", "{}", 404, /no such endpoint/],
      ["POST", "/v1/enroll", JSON.stringify({ token: "a".repeat(43), secret: "lowercase", scratchCodes: [] }), 400, /secret/],
      ["POST", "/v1/enroll", JSON.stringify({ token: "a".repeat(43), secret: SECRET, scratchCodes: [1] }), 400, /scratchCodes/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const r = await raw(s, method, path, body);
      assert.equal(r.status, status, `${method} ${path} ${body.slice(0, 60)}: ${r.body}`);
      assert.match((JSON.parse(r.body) as { error: { message: string } }).error.message, message);
    }
    const text = await raw(s, "POST", "/v1/decide", "{}", { "content-type": "text/plain" });
    assert.equal(text.status, 415);
    // The message never repeats a value.
    const r = await raw(s, "POST", "/v1/decide", JSON.stringify({ user: "root", code: "98765x", service: "gateway" }));
    assert.ok(!r.body.includes("98765x"));
    // Still healthy after all that.
    assert.equal((await server.client.health()).ok, true);
  });

  test("who may connect: the socket is 0660 root:GROUP in a 0750 directory; a user outside the group cannot, a member can; no socket means Unavailable", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const server = await startServer(t);
    const sock = statSync(server.socket);
    assert.ok(sock.isSocket());
    assert.equal(sock.mode & 0o777, 0o660);
    assert.equal(sock.uid, 0);
    assert.equal(sock.gid, server.group.gid);
    const dir = statSync(join(server.socket, ".."));
    assert.equal(dir.mode & 0o777, 0o750);
    assert.equal(dir.gid, server.group.gid);
    const outsider = throwawayUser(t);
    const member = throwawayUser(t);
    spawnSync("usermod", ["-aG", server.group.name, member.name]);
    const probe = `fetch("http://x/v1/health").catch(()=>{});require("node:http").get({socketPath:process.argv[1],path:"/v1/health"},r=>{console.log(r.statusCode);process.exit(0)}).on("error",e=>{console.log(e.code);process.exit(0)})`;
    const as = (u: { uid: number; gid: number }, groups: number[]) =>
      spawnSync("setpriv", [`--reuid=${u.uid}`, `--regid=${u.gid}`, groups.length ? `--groups=${groups.join(",")}` : "--clear-groups", process.execPath, "-e", probe, server.socket], {
        encoding: "utf8",
        cwd: "/",
      }).stdout.trim();
    assert.equal(as(outsider, []), "EACCES", "outside the group: refused by the file system");
    assert.equal(as(member, [server.group.gid]), "200", "a member of the socket group can ask");
    const gone = new DecisionClient({ socketPath: join(server.socket, "..", "nothing.sock"), timeoutMs: 2000 });
    await assert.rejects(gone.decide({ user: "root", code: "123456", service: "gateway" }), (err: Error) => err instanceof DecisionServiceUnavailable && /is otpgate server running/.test(err.message));
    await gone.close();
  });

  test("refuses to start when the socket path exists and is not a socket, or another server answers there", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const server = await startServer(t);
    const twice = spawnSync(process.execPath, [CLI, "server", "--no-radius", "--socket", server.socket, "--socket-group", server.group.name, "--state-dir", server.stateDir], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(twice.status, 2, twice.stderr);
    assert.match(twice.stderr, /is in use: another otpgate server answers there/);
    assert.equal((await server.client.health()).ok, true, "the running server keeps its socket");
    const dir = tempDir(t, "otpgate-sockfile-");
    mkdirSync(join(dir, "run"), { mode: 0o750 });
    const file = join(dir, "run", "server.sock");
    writeFileSync(file, "precious\n");
    const r = spawnSync(process.execPath, [CLI, "server", "--no-radius", "--socket", file, "--socket-group", server.group.name, "--state-dir", server.stateDir], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /exists and is not a socket/);
    assert.equal(readFileSync(file, "utf8"), "precious\n", "left alone");
    rmSync(file);
  });
});
