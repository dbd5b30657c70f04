// otpgate server start-up failures (RT2 F3, F5) and the audit retention option (issue 11):
// - a fatal error after something was opened (the UDP socket bound, the fleet pool connected)
//   closes everything and exits non-zero at once, not a half-up server answering RADIUS without
//   its API socket, nor an exit only when the pool idles out;
// - a --clients-file line that covers a local client's address is refused at start (it would
//   silently take pam_radius_auth's requests away from the --secret-file secret);
// - --audit-retention-days reaches the store's hourly pruning.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { keyFile, fleetStore } from "../helpers/fleet.js";
import { startCluster } from "../helpers/postgres.js";
import { randomPort, sleep, startRadius } from "../helpers/radius.js";
import { startFleetServer, throwawayGroup } from "../helpers/server.js";
import { CLI, runCli, systemReady, tempDir, uniqueName } from "../helpers/system.js";
import { createRequire } from "node:module";

interface RadiusLib {
  encode(args: { code: string; secret: string; identifier: number; attributes: [string, string][]; add_message_authenticator?: boolean }): Buffer;
  verify_response(args: { request: Buffer; response: Buffer; secret: string }): boolean;
}
const radiusLib = createRequire(import.meta.url)("radius") as RadiusLib;

/** One signed Access-Request from `from` (a loopback address): the answer's code and whether it verified, or null. */
function signedFrom(from: string, port: number, secret: string, user: string): Promise<{ code: number | null; verified: boolean }> {
  const packet = radiusLib.encode({
    code: "Access-Request",
    secret,
    identifier: Math.floor(Math.random() * 256),
    attributes: [
      ["User-Name", user],
      ["User-Password", "123456"],
    ],
    add_message_authenticator: true,
  });
  const socket = createSocket("udp4");
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve({ code: null, verified: false });
    }, 1500);
    socket.on("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve({ code: msg[0]!, verified: radiusLib.verify_response({ request: packet, response: msg, secret }) });
    });
    socket.bind(0, from, () => socket.send(packet, port, "127.0.0.1"));
  });
}

/** Run otpgate server; resolve when it exits or after `limitMs`: status, stderr, and ms from the error line to the exit. */
function startAndWatch(t: TestContext, args: string[], limitMs: number, errorLine: RegExp): Promise<{ exited: boolean; status: number | null; stderr: string; afterErrorMs: number | null }> {
  const child = spawn(process.execPath, [CLI, "server", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  let errorAt: number | null = null;
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (errorAt === null && errorLine.test(stderr)) errorAt = Date.now();
  });
  child.stdout.resume();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ exited: false, status: null, stderr, afterErrorMs: null }), limitMs);
    child.once("exit", (status) => {
      clearTimeout(timer);
      const now = Date.now();
      // Let the last stderr chunk arrive.
      setTimeout(() => resolve({ exited: true, status, stderr, afterErrorMs: errorAt === null ? null : now - errorAt }), 50);
    });
  });
}

function privateFile(t: TestContext, name: string, text: string): string {
  const path = join(tempDir(t, "otpgate-startup-"), name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** Bind a UDP port on 127.0.0.1 (proves it is free, or holds it); closed after the test. */
function holdPort(t: TestContext, port: number): Promise<Socket | null> {
  const s = createSocket("udp4");
  t.after(() => {
    try {
      s.close();
    } catch {
      /* already closed */
    }
  });
  return new Promise((resolve) => {
    s.once("error", () => resolve(null));
    s.bind(port, "127.0.0.1", () => resolve(s));
  });
}

describe("start-up failures close what was opened and exit at once", () => {
  test("the socket directory holds other files (RADIUS bound, fleet pool open): exit 2 within 2 s, the RADIUS port released", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const pg = await startCluster(t);
    const keys = keyFile(t);
    await (await fleetStore(t, pg, keys)).close();
    const base = tempDir(t, "otpgate-startup-");
    mkdirSync(join(base, "run"));
    writeFileSync(join(base, "run", "other-file"), "not otpgate's\n");
    const state = join(base, "state");
    mkdirSync(join(state, "invites"), { recursive: true, mode: 0o700 });
    chmodSync(state, 0o700);
    const group = throwawayGroup(t);
    const secret = privateFile(t, "radius.secret", randomBytes(18).toString("hex") + "\n");
    const port = randomPort();
    const started = Date.now();
    const r = await startAndWatch(
      t,
      [
        "--store",
        pg.url,
        "--db-key-file",
        keys,
        "--secret-file",
        secret,
        "--listen",
        `127.0.0.1:${port}`,
        "--socket",
        join(base, "run", "server.sock"),
        "--socket-group",
        group.name,
        "--state-dir",
        state,
      ],
      15_000,
      /choose another --socket|other files|not otpgate's/i,
    );
    assert.ok(r.exited, `the server is still running ${Date.now() - started} ms after start (half up): ${r.stderr}`);
    assert.equal(r.status, 2, r.stderr); // a configuration error
    assert.match(r.stderr, /holds other files \(other-file\).*choose another --socket/);
    assert.ok(r.afterErrorMs !== null && r.afterErrorMs < 2000, `exited ${r.afterErrorMs} ms after the error`);
    assert.ok((await holdPort(t, port)) !== null, "the RADIUS port is free again");
  });

  test("the RADIUS port is in use after the fleet pool opened: exit 1 within 2 s", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const pg = await startCluster(t);
    const keys = keyFile(t);
    await (await fleetStore(t, pg, keys)).close();
    let port = randomPort();
    while ((await holdPort(t, port)) === null) port = randomPort();
    const secret = privateFile(t, "radius.secret", randomBytes(18).toString("hex") + "\n");
    const r = await startAndWatch(t, ["--store", pg.url, "--db-key-file", keys, "--secret-file", secret, "--listen", `127.0.0.1:${port}`, "--no-socket"], 15_000, /is already in use/);
    assert.ok(r.exited, `still running 15 s later: ${r.stderr}`);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /127\.0\.0\.1:[0-9]+ is already in use/);
    assert.ok(r.afterErrorMs !== null && r.afterErrorMs < 2000, `exited ${r.afterErrorMs} ms after the error`);
  });
});

describe("a clients file must not cover a local client (RT2 F5)", () => {
  test("a line containing a --local-clients address (default loopback) is refused at start with the line named; nothing listens", (t) => {
    if (!systemReady(t, [])) return;
    const secretFile = privateFile(t, "radius.secret", randomBytes(18).toString("hex") + "\n");
    const cases: [string, string[], RegExp][] = [
      ["127.0.0.0/24", [], /127\.0\.0\.0\/24/],
      ["0.0.0.0/0", [], /0\.0\.0\.0\/0/],
      ["::/0", [], /::\/0/],
      ["10.0.0.0/8", ["--local-clients", "10.1.2.3"], /10\.0\.0\.0\/8/],
      ["10.1.2.0/24", ["--local-clients", "10.0.0.0/8"], /10\.1\.2\.0\/24/],
    ];
    for (const [line, extra, named] of cases) {
      const clients = privateFile(t, "clients", `192.0.2.0/24 ${randomBytes(16).toString("hex")}\n${line} ${randomBytes(16).toString("hex")}\n`);
      const port = randomPort();
      const r = runCli(["server", "--no-socket", "--secret-file", secretFile, "--listen", `127.0.0.1:${port}`, "--clients-file", clients, ...extra], { input: "" });
      assert.equal(r.status, 2, `${line}: ${r.stderr}`);
      assert.match(r.stderr, named, line);
      assert.match(r.stderr, /local client/, line);
      assert.doesNotMatch(r.stderr, /listening on/, line);
    }
  });
});

describe("--audit-retention-days", () => {
  test("the server prunes audit records older than N days (its first pass 5 s after start); --audit-retention-days needs --store", { timeout: 150_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const refused = runCli(["server", "--no-socket", "--audit-retention-days", "3"]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /--audit-retention-days goes with --store/);
    const bad = runCli(["server", "--no-socket", "--store", "postgres://x@/y?host=/nonexistent", "--audit-retention-days", "-1"]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--audit-retention-days/);

    const pg = await startCluster(t);
    const keys = keyFile(t);
    await (await fleetStore(t, pg, keys)).close();
    const row = (user: string, age: string) =>
      `INSERT INTO otpgate_audit (at, user_name, host, service, result, reason) VALUES (now() - interval '${age}', '${user}', 'h', 'radius', 'rejected', 'wrong-code');`;
    pg.psql(row("old", "3 days") + row("recent", "1 day"));
    const server = await startFleetServer(t, pg.url, keys, ["--audit-retention-days", "2"]);
    const users = () => pg.psql("SELECT user_name FROM otpgate_audit WHERE user_name IN ('old','recent') ORDER BY user_name").trim();
    assert.match(users(), /old[\s\S]*recent/);
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && /old/.test(users())) await sleep(2000);
    assert.doesNotMatch(users(), /old/, "the 3-day-old record is pruned with --audit-retention-days 2 (the default 90 would keep it)");
    assert.match(users(), /recent/, "the 1-day-old record stays");
    await server.stop();
  });
});

describe("SIGHUP re-reads the clients file", () => {
  test("a new line is used after SIGHUP; a refused file is logged and the previous clients stay; without a clients file SIGHUP does not stop the server", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const secret = randomBytes(16).toString("hex");
    const dir = tempDir(t, "otpgate-startup-");
    const clients = join(dir, "clients");
    writeFileSync(clients, `192.0.2.0/24 ${randomBytes(16).toString("hex")}\n`, { mode: 0o600 });
    const server = await startRadius(t, ["--clients-file", clients, "--local-clients", "127.0.0.1"]);
    const user = uniqueName("nobody");
    assert.equal((await signedFrom("127.0.0.5", server.port, secret, user)).code, null, "127.0.0.5 is in no line yet: dropped");
    const logged = async (pattern: RegExp) => {
      for (let i = 0; i < 50 && !server.stdout().some((l) => pattern.test(l)); i++) await sleep(100);
      return server.stdout().some((l) => pattern.test(l));
    };

    writeFileSync(clients, `127.0.0.5 ${secret}\n`, { mode: 0o600 });
    server.child.kill("SIGHUP");
    assert.ok(await logged(/"event":"reload".*1 network client line/), server.stdout().join("\n"));
    assert.deepEqual(await signedFrom("127.0.0.5", server.port, secret, user), { code: 3, verified: true }, "the new line is used: decided (no such user), signed with its secret");

    writeFileSync(clients, `127.0.0.0/24 ${secret}\n`, { mode: 0o600 });
    server.child.kill("SIGHUP");
    assert.ok(await logged(/"event":"reload-failed".*127\.0\.0\.0\/24 covers a local client/), server.stdout().join("\n"));
    assert.equal(server.child.exitCode, null, "still running");
    assert.deepEqual(await signedFrom("127.0.0.5", server.port, secret, uniqueName("nobody")), { code: 3, verified: true }, "the previous clients stay");

    const plain = await startRadius(t);
    plain.child.kill("SIGHUP");
    await sleep(500);
    assert.equal(plain.child.exitCode, null, "SIGHUP without a clients file does not stop the server");
    assert.equal(plain.child.signalCode, null, "SIGHUP without a clients file does not stop the server");
    await plain.stop();
    await server.stop();
  });
});
