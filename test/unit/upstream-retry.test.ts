// Red team 1, F8: the upstream retried GETs the app had already answered: an app sending a
// spontaneous "100 Continue" then its 200 (or a 101 to a plain request, or a malformed answer) made
// undici fail with a socket error after the app had processed the request, and the retry ran it a
// second time. A request is sent again only when no byte of an answer arrived.
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { describe, test, type TestContext } from "node:test";
import { createUpstream } from "../../src/adapters/http/upstream.js";
import type { GatewayResponse } from "../../src/adapters/http/gateway-types.js";

interface RawApp {
  readonly origin: URL;
  /** Request lines received, with the connection number. */
  readonly seen: string[];
}

/** An app on loopback that answers the n-th request (over all connections) with answer(n, socket). */
async function rawApp(t: TestContext, answer: (n: number, socket: Socket) => void): Promise<RawApp> {
  const seen: string[] = [];
  let conn = 0;
  const server: Server = createServer((s) => {
    const id = conn++;
    let buf = "";
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      let end: number;
      while ((end = buf.indexOf("\r\n\r\n")) >= 0) {
        seen.push(`${id} ${buf.slice(0, buf.indexOf("\r\n"))}`);
        buf = buf.slice(end + 4);
        answer(seen.length, s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  return { origin: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`), seen };
}

async function drain(res: GatewayResponse): Promise<string> {
  const body = res.body;
  if (body === null || typeof body === "string") return body ?? "";
  if (body instanceof Uint8Array) return Buffer.from(body).toString();
  let out = "";
  for await (const c of body) out += Buffer.from(c).toString();
  return out;
}

/** forward() and read the answer: "status body", or "error". */
async function send(origin: URL, method = "GET"): Promise<string> {
  const up = createUpstream({ origin });
  try {
    const res = await up.forward({ user: "alice", method, target: "/once", headers: [["host", "app.test"]], body: null });
    return `${res.status} ${await drain(res)}`;
  } catch {
    return "error";
  } finally {
    await up.close();
  }
}

describe("upstream: a request the app answered is never sent again (F8)", () => {
  for (const [name, reply] of [
    ["a spontaneous 100 Continue, then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    ["101 to a plain request", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"],
    ["a malformed status line", "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok"],
    ["a malformed Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok"],
  ] as const) {
    for (const method of ["GET", "HEAD", "OPTIONS"]) {
      test(`${name} (${method}): the app receives the request once`, async (t) => {
        const app = await rawApp(t, (_n, s) => s.end(reply));
        const outcome = await send(app.origin, method);
        assert.equal(app.seen.length, 1, `the app received ${JSON.stringify(app.seen)}; the gateway got ${outcome}`);
      });
    }
  }

  test("a connection the app closes without a byte of answer is retried once on a new connection", async (t) => {
    const app = await rawApp(t, (n, s) => (n === 1 ? s.destroy() : s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")));
    assert.equal(await send(app.origin), "200 ok");
    assert.equal(app.seen.length, 2);
  });
});
