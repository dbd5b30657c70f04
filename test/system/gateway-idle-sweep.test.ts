// Red team RT-C F1: limits.max_connections is one pool for every address. A few addresses, each
// within limits.connections_per_address, held all of it with keep-alive connections that sent one
// request and then stayed idle (kept for keep_alive_timeout), and node:http dropped every other
// client's connection (sign-ins, the app, /healthz). Near the cap the gateway now closes the idle
// keep-alive connections (node's server.closeIdleConnections()), at most once a second, counted
// in /metrics and logged. In-process on loopback, scaled down: max_connections 16, 4 per address.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { parseGatewayConfig, type GatewayConfig } from "../../src/adapters/http/gateway-config.js";
import { createGateway } from "../../src/adapters/http/gateway-entry.js";
import type { Gateway } from "../../src/adapters/http/gateway-server.js";
import { tempDir } from "../helpers/system.js";

type Logged = Record<string, string | number | boolean>;

async function rig(t: TestContext): Promise<{ gateway: Gateway; port: number; logged: Logged[] }> {
  const dir = tempDir(t);
  const parsed = parseGatewayConfig(["public_url: http://app.test", `keys_file: ${join(dir, "gateway.keys")}`].join("\n") + "\n");
  const config: GatewayConfig = { ...parsed, limits: { ...parsed.limits, maxConnections: 16, connectionsPerAddress: 4, firstByteMs: 10_000 } };
  const logged: Logged[] = [];
  const gateway = createGateway(config, (e: Logged) => void logged.push(e));
  t.after(() => gateway.close());
  await new Promise<void>((r) => gateway.server.listen(0, "127.0.0.1", r));
  return { gateway, port: (gateway.server.address() as { port: number }).port, logged };
}

interface Conn {
  readonly socket: Socket;
  data: string;
  closed: boolean;
}

/** A connection from `from`, optionally sending `send`; resolved once connected (or closed). */
function open(port: number, from: string, send = ""): Promise<Conn> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress: from });
    const c: Conn = { socket, data: "", closed: false };
    socket.on("data", (d: Buffer) => (c.data += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => {
      c.closed = true;
      resolve(c);
    });
    socket.on("connect", () => {
      if (send) socket.write(send);
      resolve(c);
    });
  });
}

const until = async (ok: () => boolean, ms: number): Promise<boolean> => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (ok()) return true;
  return ok();
};

const KEEP = "GET /healthz HTTP/1.1\r\nHost: app.test\r\n\r\n";
const CLOSE = "GET /healthz HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";

test("RT-C F1: idle keep-alive connections from 4 addresses x 4 do not keep a fifth client out of max_connections 16", async (t) => {
  const { gateway, port, logged } = await rig(t);
  const held: Conn[] = [];
  t.after(() => held.forEach((c) => c.socket.destroy()));
  // One that is in the middle of a request head is not idle: it stays (bounded by head_timeout, first_byte_timeout and the per-address cap).
  const partial = await open(port, "127.0.0.9", "GET /healthz HTTP/1.1\r\nHost: app.test\r\n");
  held.push(partial);
  for (let a = 0; a < 4; a++)
    for (let i = 0; i < 4; i++) {
      const c = await open(port, `127.0.0.${10 + a}`, KEEP);
      held.push(c);
      await until(() => c.closed || /^HTTP\/1\.1 200 /.test(c.data), 2000);
    }
  const answered = held.filter((c) => /^HTTP\/1\.1 200 /.test(c.data)).length;
  assert.ok(answered >= 15, `the attacker's connections were served (within each address's cap): ${answered}`);
  await new Promise((r) => setTimeout(r, 1100)); // past the once-a-second bound of the previous sweep
  const victim = await open(port, "127.0.0.200", CLOSE);
  await until(() => victim.closed, 3000);
  assert.match(victim.data, /^HTTP\/1\.1 200 /, "the fifth client got its answer");
  assert.equal(partial.closed, false, "a connection in the middle of its request head is not idle: not closed");
  const idleLeft = held.filter((c) => c !== partial && !c.closed).length;
  assert.ok(idleLeft < 16, `idle keep-alive connections were closed (${idleLeft} of 16 left)`);
  const metrics = gateway.app.metricsText();
  const sweeps = Number(/^otpgate_idle_connection_sweeps_total (\d+)$/m.exec(metrics)?.[1] ?? "NaN");
  assert.ok(sweeps >= 1 && sweeps <= 3, `sweeps counted in /metrics: ${sweeps}`);
  const lines = logged.filter((e) => e["event"] === "connections_near_limit");
  assert.equal(lines.length, 1, "one log line, rate-limited");
  assert.equal(lines[0]!["max_connections"], 16);
});

test("RT-C F1: an attacker who refills the pool right after a sweep (within its once-a-second bound) still does not keep a later client out", async (t) => {
  const { port } = await rig(t);
  const held: Conn[] = [];
  t.after(() => held.forEach((c) => c.socket.destroy()));
  const fill = async (): Promise<void> => {
    for (let a = 0; a < 4; a++)
      for (let i = 0; i < 4; i++) {
        const from = `127.0.0.${10 + a}`;
        if (held.filter((c) => !c.closed && c.socket.localAddress === from).length >= 4) continue;
        const c = await open(port, from, KEEP);
        held.push(c);
        await until(() => c.closed || /^HTTP\/1\.1 200 /.test(c.data), 2000);
      }
  };
  await fill(); // the first sweep happens on the way (at 15 of 16)
  await fill(); // and the attacker takes the room back at once, before a second sweep is allowed
  await new Promise((r) => setTimeout(r, 1200));
  const victim = await open(port, "127.0.0.200", CLOSE);
  await until(() => victim.closed, 3000);
  assert.match(victim.data, /^HTTP\/1\.1 200 /, "a client coming after the pool was refilled got its answer");
});
