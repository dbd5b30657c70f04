// upstream.ts against a raw app on loopback: what undici actually writes for the bodies the gateway
// passes on, and the one retry when an idle app connection was closed under a request.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { createUpstream } from "../../src/adapters/http/upstream.js";
import type { StreamedBody } from "../../src/adapters/http/gateway-types.js";

/** A raw app: records the bytes of each connection; `answer` decides per connection what to do. */
async function rawApp(t: TestContext, answer: (conn: number, bytes: string, socket: Socket) => void) {
  const conns: string[] = [];
  const server = createServer((s) => {
    const id = conns.push("") - 1;
    s.on("data", (d: Buffer) => {
      conns[id] += d.toString("latin1");
      answer(id, conns[id]!, s);
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  return { conns, origin: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`) };
}

const ok = (s: Socket) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
const chunks = (...parts: string[]) =>
  (async function* () {
    for (const p of parts) yield Buffer.from(p);
  })();

test("undici frames a streamed body on GET/DELETE/OPTIONS itself (chunked) with connection: close on the wire (red team 1, F2), a POST too (red team 2, F1), and reuses none of those connections; a length-delimited body keeps its length", async (t) => {
  const app = await rawApp(t, (_, bytes, s) => {
    if (/\r\n0\r\n\r\n$/.test(bytes) || /content-length: 5\r\n\r\nhello$/i.test(bytes) || /^GET \/after /.test(bytes)) ok(s);
  });
  const up = createUpstream({ origin: app.origin });
  t.after(() => up.close());
  for (const method of ["GET", "DELETE", "OPTIONS"]) {
    const res = await up.forward({ user: "alice", method, target: `/${method}`, headers: [["host", "app"]], body: chunks("GET /smuggled HTTP/1.1\r\n", "\r\n") });
    assert.equal(res.status, 200);
  }
  const post = await up.forward({
    user: "alice",
    method: "POST",
    target: "/post",
    headers: [
      ["host", "app"],
      ["content-length", "5"],
    ],
    body: chunks("hel", "lo"),
  });
  assert.equal(post.status, 200);
  for (const [i, method] of ["GET", "DELETE", "OPTIONS"].entries()) {
    assert.match(
      app.conns[i]!,
      new RegExp(
        `^${method} /${method} HTTP/1\\.1\\r\\nhost: app\\r\\nconnection: close\\r\\ntransfer-encoding: chunked\\r\\n\\r\\n18\\r\\nGET /smuggled HTTP/1\\.1\\r\\n\\r\\n2\\r\\n\\r\\n\\r\\n0\\r\\n\\r\\n$`,
      ),
    );
  }
  assert.equal(app.conns.length, 4, "each bodied GET/DELETE/OPTIONS had a connection of its own");
  assert.match(app.conns[3]!, /^POST \/post HTTP\/1\.1\r\nhost: app\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello$/);
  // The next request gets a new connection: none that carried a body is used again.
  assert.equal((await up.forward({ user: "alice", method: "GET", target: "/after", headers: [["host", "app"]], body: null })).status, 200);
  assert.equal(app.conns.length, 5);
});

test("a body longer than its Content-Length is never sent as a second request", async (t) => {
  const app = await rawApp(t, (_, bytes, s) => {
    if (bytes.includes("\r\n\r\n")) ok(s);
  });
  const up = createUpstream({ origin: app.origin });
  t.after(() => up.close());
  await assert.rejects(up.forward({ user: "alice", method: "POST", target: "/x", headers: [["content-length", "2"]], body: chunks("ab", "GET /smuggled HTTP/1.1\r\n\r\n") }));
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(!app.conns.join("").includes("/smuggled"));
});

test("an idle app connection closed under a GET is retried once on a new connection; a POST with a body is not", async (t) => {
  const requests = (bytes: string) => bytes.split(" HTTP/1.1\r\n").length - 1;
  // The app closes a kept connection the moment the next request arrives on it (the race with its
  // keep-alive timeout): connections 0 and 1 on their 2nd request.
  const app = await rawApp(t, (conn, bytes, s) => {
    if (!bytes.endsWith("\r\n\r\n") && !bytes.endsWith("x") && !bytes.endsWith("y")) return;
    if ((conn === 0 || conn === 1) && requests(bytes) === 2) return void s.destroy();
    ok(s);
  });
  const up = createUpstream({ origin: app.origin, connectionsPerPool: 1 });
  t.after(() => up.close());
  assert.equal((await up.forward({ user: "alice", method: "GET", target: "/a", headers: [], body: null })).status, 200);
  assert.equal((await up.forward({ user: "alice", method: "GET", target: "/b", headers: [], body: null })).status, 200, "retried on a new connection");
  assert.equal(app.conns.length, 2);
  assert.match(app.conns[1]!, /^GET \/b /);
  await assert.rejects(up.forward({ user: "alice", method: "POST", target: "/c", headers: [["content-length", "1"]], body: chunks("x") }), "a request with a body is not sent again");
  assert.equal(app.conns.length, 2);
  assert.match(app.conns[1]!, /POST \/c /);
  assert.equal((await up.forward({ user: "alice", method: "POST", target: "/d", headers: [["content-length", "1"]], body: chunks("y") })).status, 200, "a new connection");
  assert.equal(app.conns.length, 3);
});

/** A sink like a ServerResponse: records chunks, says "full" after `limit` bytes until drained. */
function recordingSink(limit = Infinity) {
  const sink = {
    chunks: [] as Buffer[],
    ended: false,
    destroyed: null as Error | null,
    buffered: 0,
    drainers: [] as (() => void)[],
    write(c: Uint8Array) {
      sink.chunks.push(Buffer.from(c));
      sink.buffered += c.length;
      return sink.buffered < limit;
    },
    end() {
      sink.ended = true;
    },
    destroy(e?: Error) {
      sink.destroyed = e ?? new Error("destroyed");
    },
    once(_event: "drain", l: () => void) {
      sink.drainers.push(l);
    },
    drain() {
      sink.buffered = 0;
      for (const l of sink.drainers.splice(0)) l();
    },
    text: () => Buffer.concat(sink.chunks).toString("latin1"),
  };
  return sink;
}

test("the app's body goes straight into the sink: what came before pipeTo is kept, a full sink pauses undici until 'drain', nothing is lost", async (t) => {
  const big = "x".repeat(300_000);
  const app = await rawApp(t, (_, bytes, s) => {
    if (bytes.endsWith("\r\n\r\n")) s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
  });
  const up = createUpstream({ origin: app.origin });
  t.after(() => up.close());
  const res = await up.forward({ user: "alice", method: "GET", target: "/big", headers: [["host", "app"]], body: null });
  assert.equal(res.status, 200);
  await new Promise((r) => setTimeout(r, 50)); // the body arrives before the shell attaches the sink
  const body = res.body as StreamedBody;
  const sink = recordingSink(16 * 1024);
  body.pipeTo(sink);
  for (let i = 0; i < 200 && !sink.ended; i++) {
    await new Promise((r) => setTimeout(r, 5));
    if (sink.drainers.length) sink.drain();
  }
  assert.equal(sink.ended, true);
  assert.equal(sink.destroyed, null);
  assert.equal(sink.text(), big);
});

test("a body cut short by the app destroys the sink (never ended as if complete); HEAD has no body", async (t) => {
  const app = await rawApp(t, (_, bytes, s) => {
    if (!bytes.endsWith("\r\n\r\n")) return;
    if (bytes.startsWith("HEAD")) return void s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    setTimeout(() => s.destroy(), 20);
  });
  const up = createUpstream({ origin: app.origin });
  t.after(() => up.close());
  const res = await up.forward({ user: "alice", method: "GET", target: "/cut", headers: [], body: null });
  const sink = recordingSink();
  (res.body as StreamedBody).pipeTo(sink);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(sink.text(), "abc");
  assert.equal(sink.ended, false);
  assert.ok(sink.destroyed, "the client's response is destroyed");
  const head = await up.forward({ user: "alice", method: "HEAD", target: "/h", headers: [], body: null });
  assert.equal(head.body, null);
});

test("a client that goes away aborts its app request, before the answer and while the body streams", async (t) => {
  const closed: number[] = [];
  const app = await rawApp(t, (conn, bytes, s) => {
    s.once("close", () => closed.push(conn));
    if (bytes.startsWith("GET /stream") && bytes.endsWith("\r\n\r\n")) s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    // GET /wait: never answered
  });
  const up = createUpstream({ origin: app.origin });
  t.after(() => up.close());
  let gone1: (() => void) | undefined;
  const waiting = up.forward({ user: "alice", method: "GET", target: "/wait", headers: [], body: null, onAbort: (l) => (gone1 = l) });
  await new Promise((r) => setTimeout(r, 50));
  gone1!();
  await assert.rejects(waiting, /client went away/);
  let gone2: (() => void) | undefined;
  const res = await up.forward({ user: "alice", method: "GET", target: "/stream", headers: [], body: null, onAbort: (l) => (gone2 = l) });
  const sink = recordingSink();
  (res.body as StreamedBody).pipeTo(sink);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sink.text(), "abc");
  gone2!();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual([...new Set(closed)].sort(), [0, 1], "both app connections were closed, nothing waits on a dead client");
  assert.equal(sink.ended, false);
});
