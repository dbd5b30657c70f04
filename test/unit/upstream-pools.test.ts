// upstream.ts's per-user pools (red team 1, F9) against a raw app on loopback: which app connection
// each user's request goes out on, the cap on connections per user, the cap on pools (AppPoolsFull
// while every pool is busy), and a WebSocket upgrade on the user's own pool.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { AppPoolsFull } from "../../src/adapters/http/app-pools.js";
import { createUpstream } from "../../src/adapters/http/upstream.js";
import type { GatewayResponse } from "../../src/adapters/http/gateway-types.js";

interface Seen {
  readonly conn: number;
  readonly user: string;
  readonly path: string;
}

/** A raw app: each head is recorded with its connection; /slow answers when `release()` is called. */
async function rawApp(t: TestContext) {
  const seen: Seen[] = [];
  const held: (() => void)[] = [];
  let conns = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    const conn = conns++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        const head = buf.slice(0, end).split("\r\n");
        buf = buf.slice(end + 4);
        const path = head[0]!.split(" ")[1] ?? "";
        const header = (name: string) =>
          head
            .find((l) => l.toLowerCase().startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim() ?? "";
        seen.push({ conn, user: header("x-user"), path });
        const key = header("sec-websocket-key");
        if (key) {
          const accept = createHash("sha1")
            .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
            .digest("base64");
          return void s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        }
        const answer = () => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        if (path.startsWith("/slow")) held.push(answer);
        else answer();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    seen,
    origin: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`),
    /** Answer every held /slow request. */
    release: () => held.splice(0).forEach((a) => a()),
    held: () => held.length,
  };
}

async function drain(res: GatewayResponse): Promise<string> {
  const body = res.body;
  if (body === null || typeof body === "string") return body ?? "";
  if (body instanceof Uint8Array) return Buffer.from(body).toString();
  let out = "";
  for await (const c of body) out += Buffer.from(c).toString();
  return out;
}

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
};

const get = (user: string | null, path: string) => ({ user, method: "GET", target: path, headers: [["x-user", user ?? "-"]] as [string, string][], body: null });

test("users' requests never share an app connection; one user's sequential requests reuse theirs; requests without a user have their own", async (t) => {
  const app = await rawApp(t);
  const up = createUpstream({ origin: app.origin });
  t.after(() => up.close());
  for (let i = 0; i < 3; i++)
    for (const user of ["alice", "bob", null]) {
      const res = await up.forward(get(user, `/${i}`));
      assert.equal(await drain(res), "ok");
      await new Promise((r) => setTimeout(r, 5)); // undici reuses a kept connection from the next turn of the event loop
    }
  const connsOf = (user: string) => new Set(app.seen.filter((s) => s.user === user).map((s) => s.conn));
  const alice = connsOf("alice");
  const bob = connsOf("bob");
  const anon = connsOf("-");
  assert.equal(alice.size, 1, "alice's three requests went out on one kept connection");
  assert.equal(bob.size, 1);
  assert.equal(anon.size, 1);
  assert.equal(new Set([...alice, ...bob, ...anon]).size, 3, "three users, three connections");
  assert.equal(up.pools, 3);
});

test("a user's pool opens at most connectionsPerPool connections (the rest wait for one); other users are not held up", async (t) => {
  const app = await rawApp(t);
  const up = createUpstream({ origin: app.origin, connectionsPerPool: 2 });
  t.after(() => up.close());
  const slow = [0, 1, 2, 3].map((i) => up.forward(get("alice", `/slow-${i}`)));
  await until(() => app.held() === 2, "two of alice's requests at the app");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(app.held(), 2, "the other two wait for one of alice's two connections");
  assert.equal(await drain(await up.forward(get("bob", "/fast"))), "ok", "bob is served meanwhile");
  app.release();
  await until(() => app.held() === 2, "the waiting two went out");
  app.release();
  for (const r of slow) assert.equal(await drain(await r), "ok");
  assert.equal(new Set(app.seen.filter((s) => s.user === "alice").map((s) => s.conn)).size, 2);
});

test("at maxPools with every pool busy, another user's request is refused (AppPoolsFull) before it reaches the app; once one finishes, the new user is served", async (t) => {
  const app = await rawApp(t);
  const up = createUpstream({ origin: app.origin, maxPools: 2 });
  t.after(() => up.close());
  const a = up.forward(get("alice", "/slow-a"));
  const b = up.forward(get("bob", "/slow-b"));
  await until(() => app.held() === 2, "alice and bob at the app");
  await assert.rejects(up.forward(get("carol", "/x")), AppPoolsFull);
  assert.ok(!app.seen.some((s) => s.user === "carol"), "carol's request never reached the app");
  assert.equal(await drain(await up.forward(get("alice", "/x"))), "ok", "alice, who has a pool, is still served");
  app.release();
  await drain(await a);
  await drain(await b);
  assert.equal(await drain(await up.forward(get("carol", "/x"))), "ok");
  assert.equal(up.pools, 2);
});

test("a WebSocket upgrade goes out on a connection of the user's own pool, never on another user's kept connection", async (t) => {
  const app = await rawApp(t);
  const up = createUpstream({ origin: app.origin });
  t.after(() => up.close());
  await drain(await up.forward(get("alice", "/a")));
  await new Promise((r) => setTimeout(r, 20)); // alice's kept connection is idle and ready for reuse
  const { socket } = await up.upgrade({
    user: "bob",
    target: "/ws",
    headers: [
      ["x-user", "bob"],
      ["sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="],
      ["sec-websocket-version", "13"],
    ],
  });
  socket.destroy();
  const aliceConn = app.seen.find((s) => s.user === "alice")!.conn;
  const bobConn = app.seen.find((s) => s.user === "bob")!.conn;
  assert.notEqual(bobConn, aliceConn);
});
