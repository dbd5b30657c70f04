// Red team 1, F3: one signed-in user starved everyone: 128 slow chunked POSTs (1 byte every 5 s)
// held every app connection, and nothing cut a request body that stopped moving. Each user may have
// limits.app_requests_per_user requests at the app at once (503 beyond, until an answer is sent),
// and a request body toward the app may pause at most limits.app_body_idle_timeout between chunks.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { GatewayRequest, GatewayResponse } from "../../src/adapters/http/gateway-types.js";
import { appRequest, testApp } from "../helpers/gateway-app.js";

const get = (cookie: string, target = "/x"): GatewayRequest => ({
  method: "GET",
  target,
  headers: [
    ["host", "app.test"],
    ["cookie", cookie],
  ],
  remoteAddress: "192.0.2.10",
  body: null,
});

/** Read a response body to its end. */
async function drain(res: GatewayResponse): Promise<string> {
  const body = res.body;
  if (body === null || typeof body === "string") return body ?? "";
  if (body instanceof Uint8Array) return Buffer.from(body).toString();
  let out = "";
  for await (const c of body) out += Buffer.from(c).toString();
  return out;
}

describe("gateway app: what one user may hold at the app (F3)", () => {
  test("beyond limits.app_requests_per_user requests of one user at the app: 503; other users are served; a finished answer frees its place", async () => {
    const t = testApp({}, { limits: { appRequestsPerUser: 2 } });
    const alice = t.signIn("alice").cookie;
    const bob = t.signIn("bob").cookie;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const real = t.upstream.forward.bind(t.upstream);
    t.upstream.forward = async (req) => {
      if (!req.target.startsWith("/slow")) return real(req);
      return {
        status: 200,
        headers: [["content-type", "text/plain"]],
        body: (async function* () {
          yield Buffer.from("part 1\n");
          await held;
          yield Buffer.from("part 2\n");
        })(),
      };
    };
    const first = await t.app.handle(get(alice, "/slow-1"));
    const second = await t.app.handle(get(alice, "/slow-2"));
    const third = await t.app.handle(get(alice, "/slow-3"));
    assert.equal(third.status, 503, "alice's third request at once");
    assert.match(await drain(third), /too many requests at once/i);
    assert.deepEqual(
      third.headers.filter(([n]) => n === "retry-after"),
      [["retry-after", "1"]],
    );
    assert.equal((await appRequest(t.app, "/x", { headers: { cookie: bob } })).status, 200, "bob is served");
    release();
    assert.equal(await drain(first), "part 1\npart 2\n");
    assert.equal((await appRequest(t.app, "/x", { headers: { cookie: alice } })).status, 200, "a finished answer frees its place");
    await drain(second);
    // Answers that fail or that are never read free their place too.
    t.upstream.reply = () => new Error("app down");
    for (let i = 0; i < 3; i++) assert.equal((await appRequest(t.app, "/x", { headers: { cookie: alice } })).status, 502);
    t.upstream.reply = () => ({ status: 200, headers: [], body: "ok" });
    for (let i = 0; i < 3; i++) assert.equal((await appRequest(t.app, "/x", { headers: { cookie: alice } })).status, 200);
  });

  test("a request body that pauses longer than limits.app_body_idle_timeout between chunks is cut (408); a steady one passes", async () => {
    const t = testApp({}, { limits: { appBodyIdleMs: 80 } });
    const alice = t.signIn("alice").cookie;
    const slow = async function* () {
      yield Buffer.from("a");
      await new Promise((r) => setTimeout(r, 600));
      yield Buffer.from("b");
    };
    const started = Date.now();
    const cut = await appRequest(t.app, "/upload", { method: "POST", headers: { cookie: alice, "transfer-encoding": "chunked" }, body: slow() });
    const ms = Date.now() - started;
    assert.equal(cut.status, 408);
    assert.equal(cut.header("connection"), "close");
    assert.ok(ms < 500, `cut after ${ms} ms`);
    const steady = async function* () {
      for (let i = 0; i < 5; i++) {
        yield Buffer.from(String(i));
        await new Promise((r) => setTimeout(r, 30));
      }
    };
    const ok = await appRequest(t.app, "/upload", { method: "POST", headers: { cookie: alice, "transfer-encoding": "chunked" }, body: steady() });
    assert.equal(ok.status, 200);
    assert.equal(t.upstream.seen.at(-1)!.body, "01234");
  });
});
