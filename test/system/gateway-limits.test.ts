// The gateway's shell (node:http) and its limits, in-process on loopback (no root needed): time to
// first byte, head timeout, the body deadline of the gateway's pages, keep-alive idle, the
// per-address connection cap, heads with too many header lines refused (not truncated), /metrics
// from loopback or its own listener only, and WebSocket upgrades against a real app socket.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import type { Duplex } from "node:stream";
import { parseGatewayConfig, type GatewayConfig } from "../../src/adapters/http/gateway-config.js";
import { createGateway } from "../../src/adapters/http/gateway-entry.js";
import type { Gateway } from "../../src/adapters/http/gateway-server.js";
import { tempDir } from "../helpers/system.js";
import { wsTextFrame, WS_KEY } from "../helpers/gateway.js";

interface Rig {
  readonly gateway: Gateway;
  readonly port: number;
  readonly dir: string;
  /** A cookie header value for a session of `user` issued by the gateway's session service. */
  cookie(user: string): string;
}

async function rig(t: TestContext, limits: Partial<GatewayConfig["limits"]>, yaml: string[] = [], extra: Partial<GatewayConfig> = {}): Promise<Rig> {
  const dir = tempDir(t);
  const parsed = parseGatewayConfig(["public_url: http://app.test", `keys_file: ${join(dir, "gateway.keys")}`, ...yaml].join("\n") + "\n");
  const config: GatewayConfig = { ...parsed, ...extra, limits: { ...parsed.limits, ...limits } };
  const gateway = createGateway(config, () => undefined);
  t.after(() => gateway.close());
  await new Promise<void>((r) => gateway.server.listen(0, "127.0.0.1", r));
  const port = (gateway.server.address() as { port: number }).port;
  return {
    gateway,
    port,
    dir,
    cookie: (user) => `otpgate_session=${gateway.sessions.issue(user, Date.now(), "fingerprint-not-checked-within-session.recheck").cookie}`,
  };
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.on("error", reject);
  });
}

/** ms until the gateway closes the socket (Infinity if not within `maxMs`), and what it sent. */
function closedWithin(s: Socket, maxMs: number): Promise<{ ms: number; data: string }> {
  const started = Date.now();
  let data = "";
  s.on("data", (d: Buffer) => (data += d.toString("latin1")));
  s.on("error", () => undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ms: Infinity, data });
    }, maxMs);
    s.once("close", () => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - started, data });
    });
  });
}

describe("gateway shell: connection limits", () => {
  test("a connection that sends nothing is closed after limits.first_byte; one that sends is not cut by it", async (t) => {
    const { port } = await rig(t, { firstByteMs: 300 });
    const silent = await closedWithin(await open(port), 3000);
    assert.ok(silent.ms >= 250 && silent.ms < 1500, `closed after ${silent.ms} ms`);
    const talking = await open(port);
    talking.write("GET /healthz HTTP/1.1\r\nHost: app.test\r\n\r\n");
    const r = await closedWithin(talking, 800);
    assert.equal(r.ms, Infinity, "kept open (keep-alive) past the first-byte limit");
    assert.match(r.data, /^HTTP\/1\.1 200 /);
  });

  test("a head that stays incomplete is closed after limits.head", async (t) => {
    const { port } = await rig(t, { headMs: 500, firstByteMs: 5000 });
    const s = await open(port);
    s.write("GET /healthz HTTP/1.1\r\nHost: app.");
    const drip = setInterval(() => !s.destroyed && s.write("x"), 100);
    const r = await closedWithin(s, 4000);
    clearInterval(drip);
    assert.ok(r.ms >= 450 && r.ms < 2500, `closed after ${r.ms} ms`);
  });

  test("a slow form body to the gateway's pages is cut after limits.body", async (t) => {
    const { port } = await rig(t, { bodyMs: 400 });
    const s = await open(port);
    s.write("POST /_otpgate/login HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nuser=al");
    const r = await closedWithin(s, 4000);
    assert.ok(r.ms >= 350 && r.ms < 2000, `closed after ${r.ms} ms`);
  });

  test("an idle keep-alive connection is closed after limits.keep_alive", async (t) => {
    const { port } = await rig(t, { keepAliveMs: 400 });
    const s = await open(port);
    s.write("GET /healthz HTTP/1.1\r\nHost: app.test\r\n\r\n");
    const r = await closedWithin(s, 4000);
    assert.match(r.data, /^HTTP\/1\.1 200 /);
    assert.ok(r.ms >= 350 && r.ms < 2000, `closed after ${r.ms} ms`);
  });

  test("at most limits.connections_per_address open connections per address; a closed one frees its place", async (t) => {
    const { port } = await rig(t, { connectionsPerAddress: 3, firstByteMs: 10_000 });
    const held = [await open(port), await open(port), await open(port)];
    await new Promise((r) => setTimeout(r, 50));
    const fourth = await closedWithin(await open(port), 1000);
    assert.ok(fourth.ms < 1000, "the fourth connection is closed at once");
    assert.equal(fourth.data, "");
    held[0]!.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await open(port);
    again.write("GET /healthz HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    assert.match((await closedWithin(again, 2000)).data, /^HTTP\/1\.1 200 /);
    for (const s of held) s.destroy();
  });

  // Red team 1, F1: behind nginx on the same host every client is 127.0.0.1; ~70 anonymous login
  // POSTs held by the refusal floor filled the cap and every user's requests failed.
  test("a trusted proxy's connections are not capped: its peer address stands for many clients (F1)", async (t) => {
    const { port } = await rig(t, { connectionsPerAddress: 3, firstByteMs: 10_000 }, ["trusted_proxies: [127.0.0.1]"]);
    const held = [await open(port), await open(port), await open(port), await open(port), await open(port)];
    await new Promise((r) => setTimeout(r, 50));
    const more = await open(port);
    more.write("GET /healthz HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n");
    assert.match((await closedWithin(more, 2000)).data, /^HTTP\/1\.1 200 /, "the proxy's sixth connection is served");
    for (const s of held) s.destroy();
  });

  test("more header lines than limits.max_headers are refused with 431, never truncated", async (t) => {
    const { port } = await rig(t, { maxHeaders: 20 });
    const head = (n: number) => `GET /healthz HTTP/1.1\r\nHost: app.test\r\n${Array.from({ length: n - 2 }, (_, i) => `X-${i}: ${i}\r\n`).join("")}Connection: close\r\n\r\n`;
    const s1 = await open(port);
    s1.write(head(20));
    assert.match((await closedWithin(s1, 2000)).data, /^HTTP\/1\.1 200 /);
    const s2 = await open(port);
    s2.write(head(21));
    assert.match((await closedWithin(s2, 2000)).data, /^HTTP\/1\.1 431 /);
  });
});

describe("gateway shell: /metrics", () => {
  test("on the main listener from loopback; with metrics_listen only there", async (t) => {
    const plain = await rig(t, {});
    const get = async (port: number, path: string) => {
      const s = await open(port);
      s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      return (await closedWithin(s, 2000)).data;
    };
    assert.match(await get(plain.port, "/_otpgate/metrics"), /^HTTP\/1\.1 200 [^]*otpgate_logins_ok_total 0/);
    const metricsPort = 20000 + Math.floor(Math.random() * 20000);
    const separate = await rig(t, {}, [], { metricsListen: { host: "127.0.0.1", port: metricsPort } });
    await new Promise((r) => setTimeout(r, 100));
    assert.match(await get(separate.port, "/_otpgate/metrics"), /^HTTP\/1\.1 404 /);
    assert.match(await get(metricsPort, "/_otpgate/metrics"), /^HTTP\/1\.1 200 [^]*otpgate_upstream_errors_total 0/);
  });
});

describe("gateway shell: WebSocket tunnels to a real app", () => {
  interface WsApp {
    readonly port: number;
    readonly server: Server;
    readonly sockets: Duplex[];
    mode: "good" | "wrong-accept" | "h2c" | "404";
  }
  async function wsApp(t: TestContext): Promise<WsApp> {
    const app: WsApp = { port: 0, server: createServer((_, res) => res.end("plain")), sockets: [], mode: "good" };
    app.server.on("upgrade", (req, socket: Duplex) => {
      app.sockets.push(socket);
      socket.on("error", () => undefined);
      socket.on("end", () => socket.destroy()); // the gateway hung up its side
      const key = String(req.headers["sec-websocket-key"]);
      const accept = createHash("sha1")
        .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
        .digest("base64");
      if (app.mode === "404") return void socket.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      const upgrade = app.mode === "h2c" ? "h2c" : "websocket";
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${app.mode === "wrong-accept" ? "AAAA" : accept}\r\n\r\n`);
      socket.on("data", (d: Buffer) => socket.write(d)); // echo the raw frames
    });
    await new Promise<void>((r) => app.server.listen(0, "127.0.0.1", r));
    Object.assign(app, { port: (app.server.address() as { port: number }).port });
    t.after(() => {
      app.server.closeAllConnections();
      app.server.close();
    });
    return app;
  }
  const wsRequest = (cookie: string) =>
    `GET /socket HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\nCookie: ${cookie}\r\n\r\n`;

  test("a valid upgrade tunnels; the app's wrong answers are refused and its connection is closed (no leak)", async (t) => {
    const app = await wsApp(t);
    const gw = await rig(t, {}, [`upstream: http://127.0.0.1:${app.port}`]);
    const cookie = gw.cookie("alice");
    const s = await open(gw.port);
    s.write(wsRequest(cookie));
    let data = "";
    s.on("data", (d: Buffer) => (data += d.toString("latin1")));
    await new Promise((r) => setTimeout(r, 200));
    assert.match(data, /^HTTP\/1\.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n\r\n$/);
    s.write(wsTextFrame("through"));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(data.endsWith(wsTextFrame("through").toString("latin1")), "the frame came back through the tunnel");
    assert.equal(gw.gateway.app.tunnels.size, 1);
    assert.equal(
      gw.gateway.app.tunnels.closeTunnels(() => true),
      1,
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.destroyed || s.readableEnded, true, "revocation ends the client side");
    assert.equal(app.sockets[0]!.destroyed, true, "and the app side");

    for (const mode of ["wrong-accept", "h2c", "404"] as const) {
      app.mode = mode;
      const before = app.sockets.length;
      const c = await open(gw.port);
      c.write(wsRequest(cookie));
      const r = await closedWithin(c, 3000);
      assert.match(r.data, /^HTTP\/1\.1 502 /, mode);
      assert.equal(app.sockets.length, before + 1);
      await new Promise((r2) => setTimeout(r2, 100));
      assert.equal(app.sockets.at(-1)!.destroyed, true, `${mode}: the app connection is closed`);
    }
    s.destroy();
  });
});
