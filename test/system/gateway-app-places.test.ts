// Red team 1, F3 through the real shell and undici (no root): a user's places at the app are taken
// while the app's answer streams to the client and given back when it ends, when the client goes
// away in the middle, and for HEAD; beyond limits.app_requests_per_user: 503; a request body that
// stops moving toward the app is cut with 408.
import assert from "node:assert/strict";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { parseGatewayConfig, type GatewayConfig } from "../../src/adapters/http/gateway-config.js";
import { createGateway } from "../../src/adapters/http/gateway-entry.js";
import { tempDir } from "../helpers/system.js";

async function rig(t: TestContext, limits: Partial<GatewayConfig["limits"]>, app: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  const dir = tempDir(t);
  const parsed = parseGatewayConfig(
    ["public_url: http://app.test", `keys_file: ${join(dir, "gateway.keys")}`, `upstream: http://127.0.0.1:${(server.address() as { port: number }).port}`].join("\n") + "\n",
  );
  const gateway = createGateway({ ...parsed, limits: { ...parsed.limits, ...limits } }, () => undefined);
  t.after(() => gateway.close());
  await new Promise<void>((r) => gateway.server.listen(0, "127.0.0.1", r));
  const port = (gateway.server.address() as { port: number }).port;
  const cookie = `otpgate_session=${gateway.sessions.issue("alice", Date.now(), "fingerprint-not-checked-within-session.recheck").cookie}`;
  /** Send a request; resolves with the status and a function that reads the rest of the body. */
  const send = (method: string, path: string, body?: AsyncIterable<Buffer>) =>
    new Promise<{ status: number; res: IncomingMessage; text: () => Promise<string> }>((resolve, reject) => {
      const req = request({ port, host: "127.0.0.1", method, path, agent: false, headers: { host: "app.test", cookie, ...(body ? { "transfer-encoding": "chunked" } : {}) } }, (res) => {
        resolve({
          status: res.statusCode!,
          res,
          text: async () => {
            let s = "";
            for await (const c of res) s += String(c);
            return s;
          },
        });
      });
      req.on("error", reject);
      if (!body) return void req.end();
      void (async () => {
        for await (const c of body) req.write(c);
        req.end();
      })().catch(() => undefined);
    });
  return { send };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("places: taken while the answer streams, given back at its end, when the client goes away, and for HEAD; 503 beyond the limit", async (t) => {
  const { send } = await rig(t, { appRequestsPerUser: 2 }, (req, res) => {
    if (req.url === "/slow") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("part 1\n");
      setTimeout(() => res.end("part 2\n"), 300);
    } else res.end("ok");
  });
  const a = await send("GET", "/slow");
  const b = await send("GET", "/slow");
  const c = await send("GET", "/fast");
  assert.equal(c.status, 503, "the third request at once");
  assert.match(await c.text(), /too many requests at once/i);
  assert.equal(await a.text(), "part 1\npart 2\n");
  await b.text();
  await sleep(50);
  for (let i = 0; i < 5; i++) assert.equal((await send("HEAD", "/fast")).status, 200, `HEAD ${i}`);
  for (let i = 0; i < 3; i++) {
    const gone = await send("GET", "/slow");
    gone.res.destroy(); // the client goes away mid-answer
  }
  await sleep(400);
  for (let i = 0; i < 5; i++) {
    const r = await send("GET", "/fast");
    assert.equal(r.status, 200, `request ${i} after the others ended`);
    await r.text();
  }
});

test("a request body that stops moving toward the app is cut with 408 within limits.app_body_idle_timeout", async (t) => {
  const { send } = await rig(t, { appBodyIdleMs: 1000 }, (req, res) => {
    req.resume();
    req.on("end", () => res.end("got it"));
  });
  const started = Date.now();
  const r = await send(
    "POST",
    "/upload",
    (async function* () {
      yield Buffer.from("a");
      await sleep(3000);
      yield Buffer.from("b");
    })(),
  );
  assert.equal(r.status, 408);
  const ms = Date.now() - started;
  assert.ok(ms >= 900 && ms < 2500, `cut after ${ms} ms`);
});
