// Red team rt1, note (e): the gateway's client connected to whatever listened on decision_socket.
// It now checks, before every request (so before each reconnect), that the socket is root's and
// that no directory above it can be changed by anyone but root; otherwise it refuses
// (DecisionServiceUnavailable: the gateway answers 503 and logs the message) and sends nothing.
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { decisionClient, socketTrustProblem } from "../../src/adapters/server/client.js";
import { DecisionServiceUnavailable } from "../../src/ports/decision-service.js";

const asRoot = process.geteuid?.() === 0;
const THROWAWAY_UID = 4242;

async function fakeServer(t: import("node:test").TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-rt1-e-"));
  chmodSync(dir, 0o755);
  const socket = join(dir, "server.sock");
  let requests = 0;
  const server: Server = createServer((_req, res) => {
    requests++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ outcome: "accepted", via: "totp" }));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const client = decisionClient({ socketPath: socket, timeoutMs: 2000 });
  t.after(async () => {
    await client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, socket, client, requests: () => requests };
}

const decide = { user: "alice", code: "123456", service: "gateway", rateLimit: "ignore" as const };

test("(e) a root-owned socket in a root-only directory is asked", { skip: !asRoot && "needs root" }, async (t) => {
  const s = await fakeServer(t);
  assert.equal(socketTrustProblem(s.socket), null);
  assert.deepEqual(await s.client.decide(decide), { outcome: "accepted", via: "totp" });
  assert.equal(s.requests(), 1);
});

test("(e) a socket owned by another uid is refused, nothing is sent", { skip: !asRoot && "needs root" }, async (t) => {
  const s = await fakeServer(t);
  assert.deepEqual(await s.client.decide(decide), { outcome: "accepted", via: "totp" }, "first it is root's");
  chownSync(s.socket, THROWAWAY_UID, THROWAWAY_UID);
  await assert.rejects(s.client.decide(decide), (err: unknown) => err instanceof DecisionServiceUnavailable && /refusing to ask .* is owned by uid 4242, not by root/.test(err.message));
  assert.equal(s.requests(), 1, "the second request never reached the socket (also not over the kept-alive connection)");
});

test("(e) a socket in a directory others can write, or owned by another uid, is refused", { skip: !asRoot && "needs root" }, async (t) => {
  const s = await fakeServer(t);
  chmodSync(s.dir, 0o777);
  await assert.rejects(s.client.decide(decide), /is writable by others than root \(mode 777\)/);
  chmodSync(s.dir, 0o1777);
  await assert.rejects(s.client.decide(decide), /is writable by others than root \(mode 1777\)/, "sticky does not help for the socket's own directory");
  chmodSync(s.dir, 0o755);
  chownSync(s.dir, THROWAWAY_UID, THROWAWAY_UID);
  await assert.rejects(s.client.decide(decide), /is owned by uid 4242, not by root/);
  assert.equal(s.requests(), 0);
});

test("(e) a path that is not a socket, or missing, is refused with a message", () => {
  assert.match(socketTrustProblem("/etc/passwd") ?? "", /is not a socket/);
  assert.match(socketTrustProblem("/nonexistent/otpgate.sock") ?? "", /\/nonexistent cannot be checked \(ENOENT\)/);
  assert.match(socketTrustProblem(join(tmpdir(), "no-such-otpgate.sock")) ?? "", /is writable by others than root \(mode 1777\)/, "never a socket right in /tmp");
  if (asRoot) {
    const dir = mkdtempSync(join(tmpdir(), "otpgate-rt1-e-"));
    assert.equal(socketTrustProblem(join(dir, "none.sock")), null, "no socket in a trusted directory: the connection itself fails (server not running)");
    rmSync(dir, { recursive: true });
  }
});
