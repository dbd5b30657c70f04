// Red team 1, F9 (the residual of the first round): app connections were shared between users, as
// with nginx keep-alive. An app that sends stray bytes after a complete answer (a lying
// Content-Length, a handler that writes after it ended) can have them read as the NEXT user's
// answer when that user's request went out on the same kept-alive connection before the stray bytes
// arrived: a signed-in user A makes the app emit a crafted second response, and user B receives it.
// Now every user has an undici pool of their own (upstream.ts): an app connection carries one
// user's requests only, WebSocket upgrades included.
//
// The app here is raw `net`: for A's /evil it answers "hello" and holds a crafted second response.
// The deterministic tests write those stray bytes the moment the next request arrives on that
// connection (the race won, as it is when the stray bytes are late on the wire); the race test
// writes them after a short delay while B's requests follow A's at once (how the red team found it).
// Real sockets, the gateway in-process (no root): a few hundred milliseconds.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request, type IncomingMessage } from "node:http";
import { createServer, type Socket } from "node:net";
import { connect } from "node:net";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { parseGatewayConfig } from "../../src/adapters/http/gateway-config.js";
import { createGateway } from "../../src/adapters/http/gateway-entry.js";
import { tempDir } from "../helpers/system.js";

const CRAFTED = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\nA's crafted answer to B!";
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

interface Seen {
  readonly conn: number;
  readonly user: string;
  readonly method: string;
  readonly path: string;
  /** The users whose requests this connection carried before this one. */
  readonly before: readonly string[];
}

/** The raw app: parses heads only (the gateway sends no bodies here), answers per path. */
async function rawApp(t: TestContext, strayDelayMs: number | null) {
  const seen: Seen[] = [];
  let conns = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    const conn = conns++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    const users: string[] = [];
    let stray: string | null = null;
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        const head = buf.slice(0, end).split("\r\n");
        buf = buf.slice(end + 4);
        const [method = "", path = ""] = head[0]!.split(" ");
        const header = (name: string) =>
          head
            .slice(1)
            .find((l) => l.toLowerCase().startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim() ?? "";
        const user = header("remote-user") || "nobody";
        const key = header("sec-websocket-key");
        seen.push({ conn, user, method: key ? "UPGRADE" : method, path, before: [...users] });
        users.push(user);
        // Stray bytes held for this connection go out first: the race with the next request won.
        if (stray !== null) s.write(stray);
        stray = null;
        if (path.startsWith("/evil")) {
          s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
          if (strayDelayMs === null) stray = CRAFTED;
          else setTimeout(() => s.writable && s.write(CRAFTED), strayDelayMs);
        } else if (key) {
          const accept = createHash("sha1")
            .update(key + WS_GUID)
            .digest("base64");
          s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
          return; // the tunnel: nothing more is parsed on this connection
        } else {
          const body = `for ${user}`;
          s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { seen, port: (server.address() as { port: number }).port };
}

async function rig(t: TestContext, strayDelayMs: number | null = null) {
  const app = await rawApp(t, strayDelayMs);
  const dir = tempDir(t);
  const config = parseGatewayConfig(["public_url: http://app.test", `keys_file: ${join(dir, "gateway.keys")}`, `upstream: http://127.0.0.1:${app.port}`].join("\n") + "\n");
  const gateway = createGateway(config, () => undefined);
  t.after(() => gateway.close());
  await new Promise<void>((r) => gateway.server.listen(0, "127.0.0.1", r));
  const port = (gateway.server.address() as { port: number }).port;
  const cookieOf = (user: string) => `otpgate_session=${gateway.sessions.issue(user, Date.now(), "fingerprint-not-checked-within-session.recheck").cookie}`;
  const cookies = { alice: cookieOf("alice"), bob: cookieOf("bob") };
  const get = (user: keyof typeof cookies, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ port, host: "127.0.0.1", path, agent: false, headers: { host: "app.test", cookie: cookies[user] } }, (res: IncomingMessage) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString("latin1")));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  /** A WebSocket upgrade through the gateway; resolves with the gateway's status line. */
  const upgrade = (user: keyof typeof cookies, path: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect(port, "127.0.0.1");
      let got = "";
      s.on("error", reject);
      s.on("data", (d: Buffer) => {
        got += d.toString("latin1");
        if (got.includes("\r\n")) {
          s.destroy();
          resolve(got.slice(0, got.indexOf("\r\n")));
        }
      });
      s.on("close", () => resolve(got.split("\r\n")[0] ?? ""));
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookies[user]}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  return { app, get, upgrade };
}

/** Every request of `user` went out on a connection that had carried nobody else's. */
function assertOwnConnections(seen: readonly Seen[], user: string): void {
  for (const s of seen.filter((x) => x.user === user)) {
    const others = s.before.filter((u) => u !== user);
    assert.deepEqual(others, [], `${user}'s ${s.method} ${s.path} went out on app connection ${s.conn}, which had carried requests of ${others.join(", ")}`);
  }
}

test("F9: user B never receives the stray bytes user A made the app send, and B's requests never share an app connection with A's", async (t) => {
  const { app, get } = await rig(t);
  for (let round = 0; round < 3; round++) {
    // A's own stray bytes from the round before may be read as A's answer: A only confuses A.
    const a = await get("alice", `/evil-${round}`);
    assert.equal(a.status, 200);
    if (round === 0) assert.equal(a.body, "hello");
    for (let i = 0; i < 3; i++) {
      const b = await get("bob", `/page-${round}-${i}`);
      assert.doesNotMatch(b.body, /crafted/, `B received A's crafted bytes (round ${round}, request ${i})`);
      assert.deepEqual(b, { status: 200, body: "for bob" });
    }
  }
  assertOwnConnections(app.seen, "bob");
  assertOwnConnections(app.seen, "alice");
  assert.equal(app.seen.filter((s) => s.user === "bob").length, 9, "each of B's requests reached the app once");
});

test("F9: a WebSocket upgrade goes out on a connection no other user's request used", async (t) => {
  const { app, get, upgrade } = await rig(t);
  assert.deepEqual(await get("alice", "/evil"), { status: 200, body: "hello" });
  assert.equal(await upgrade("bob", "/socket"), "HTTP/1.1 101 Switching Protocols");
  assert.equal((await get("alice", "/after")).status, 200, "A's next request is answered (A's stray bytes go to A only)");
  const up = app.seen.find((s) => s.method === "UPGRADE");
  assert.ok(up, "the upgrade reached the app");
  assertOwnConnections(app.seen, "bob");
});

test("F9, as raced: the stray bytes come a moment after A's answer while B's requests follow at once; B never gets them", async (t) => {
  const { app, get } = await rig(t, 1);
  let crafted = 0;
  let failed = 0;
  for (let i = 0; i < 60; i++) {
    await get("alice", `/evil-${i}`);
    const b = await get("bob", `/page-${i}`);
    if (/crafted/.test(b.body)) crafted++;
    else if (b.body !== "for bob") failed++;
  }
  assert.equal(crafted, 0, `B received A's crafted answer ${crafted} times in 60`);
  assert.equal(failed, 0, "every B request got its own answer");
  assertOwnConnections(app.seen, "bob");
});
