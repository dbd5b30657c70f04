// The gateway's reverse proxy at the byte level (node:http parses, undici frames toward the app):
// pipelining and order, bodies both ways, HEAD/204/304 on kept-alive connections, big streams,
// request smuggling never reaching the app, a connection moving between proxying and the gateway's
// pages, the app closing idle connections, the app down. (The full corpus: gateway-smuggling.test.ts.)
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import { connect } from "node:net";
import { describe, test, type TestContext } from "node:test";
import { cookiesFrom, http, login, startGateway } from "../helpers/gateway.js";
import { enrolledUser, oathTotp, systemReady, tempDir } from "../helpers/system.js";

interface App {
  readonly port: number;
  readonly seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[];
  readonly server: Server;
  close(): void;
}

async function startApp(keepAliveTimeout = 5000): Promise<App> {
  const seen: App["seen"] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("latin1");
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const url = new URL(req.url ?? "/", "http://app");
      if (url.pathname === "/slow") return void setTimeout(() => res.end("slow\n"), 300);
      if (url.pathname === "/nocontent") return void res.writeHead(204).end();
      if (url.pathname === "/notmodified") return void res.writeHead(304, { etag: '"x"' }).end();
      if (url.pathname === "/big") {
        const n = Number(url.searchParams.get("n"));
        const block = Buffer.alloc(65536, 0x61);
        let sent = 0;
        const more = () => {
          while (sent < n) {
            const piece = block.subarray(0, Math.min(block.length, n - sent));
            sent += piece.length;
            if (!res.write(piece)) return void res.once("drain", more);
          }
          res.end();
        };
        return more();
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ method: req.method, url: req.url, user: req.headers["remote-user"] ?? null, body }));
    });
  });
  server.keepAliveTimeout = keepAliveTimeout;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as { port: number }).port, seen, server, close: () => server.close() };
}

/** Send raw bytes (in pieces, a little apart) and collect everything until the gateway closes or goes quiet. */
function raw(port: number, pieces: (string | Buffer)[], quietMs = 600): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let data = "";
    let timer: NodeJS.Timeout;
    const done = () => {
      s.destroy();
      resolve(data);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    s.on("connect", async () => {
      for (const p of pieces) {
        s.write(p);
        await new Promise((r) => setTimeout(r, 20));
      }
      arm();
    });
    s.on("data", (d: Buffer) => {
      data += d.toString("latin1");
      arm();
    });
    s.on("end", () => {
      clearTimeout(timer);
      resolve(data);
    });
    s.on("error", reject);
  });
}

const statuses = (text: string) => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));

async function rig(t: TestContext, appOptions?: number, extra: Record<string, unknown> = {}) {
  const app = await startApp(appOptions);
  t.after(() => app.close());
  const gw = await startGateway(tempDir(t), { public_url: "http://app.test", upstream: `http://127.0.0.1:${app.port}`, allowed_hosts: ["app.test"], ...extra });
  t.after(() => gw.stop());
  const { user, secret } = enrolledUser(t);
  const ok = await login(gw, user.name, oathTotp(secret));
  assert.equal(ok.status, 303);
  const cookie = `otpgate_session=${cookiesFrom(ok).otpgate_session}`;
  return { app, gw, user, cookie };
}

const get = (path: string, cookie: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: app.test\r\nCookie: theme=dark; ${cookie}\r\n${extra}\r\n`;

{
  describe("gateway proxy", () => {
    test("pipelined requests keep their order; Remote-User cannot be forged; the session cookie never reaches the app", async (t) => {
      if (!systemReady(t, ["oathtool"])) return;
      const { app, gw, user, cookie } = await rig(t);
      const out = await raw(gw.port, [get("/slow", cookie, "Remote-User: admin\r\nX-Forwarded-User: admin\r\n") + get("/echo?2", cookie)]);
      assert.deepEqual(statuses(out), [200, 200]);
      assert.ok(out.indexOf("slow") < out.indexOf('"url":"/echo?2"'), "responses in request order");
      assert.equal(app.seen.length, 2);
      for (const s of app.seen) {
        assert.equal(s.headers["remote-user"], user.name);
        assert.equal(s.headers["x-forwarded-user"], undefined);
        assert.equal(s.headers.cookie, "theme=dark");
        assert.equal(s.headers["x-forwarded-proto"], "http");
        assert.equal(s.headers["x-forwarded-host"], "app.test");
        assert.match(String(s.headers["x-forwarded-for"]), /127\.0\.0\.1$/);
      }
    });

    test("bodies: Content-Length and chunked requests arrive intact; Expect: 100-continue works; HEAD, 204 and 304 keep the connection usable", async (t) => {
      if (!systemReady(t, ["oathtool"])) return;
      const { app, gw, cookie } = await rig(t);
      const body = "x=" + "é".repeat(10) + "&y=2";
      const lengthPost = `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body, "latin1")}\r\n\r\n`;
      const chunkedPost = `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nTransfer-Encoding: chunked\r\n\r\n`;
      const out = await raw(gw.port, [
        Buffer.from(lengthPost + body.slice(0, 5), "latin1"),
        Buffer.from(body.slice(5), "latin1"),
        chunkedPost + "4\r\nabcd\r\n",
        "3\r\nefg\r\n0\r\n\r\n",
        `HEAD /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\n\r\n` + get("/nocontent", cookie) + get("/notmodified", cookie) + get("/echo?last", cookie),
      ]);
      assert.deepEqual(statuses(out), [200, 200, 200, 204, 304, 200]);
      assert.deepEqual(app.seen.map((s) => s.body).slice(0, 2), [body, "abcdefg"]);
      assert.match(out, /"url":"\/echo\?last"/);
      const expect = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const r = request({ host: "127.0.0.1", port: gw.port, method: "POST", path: "/echo", headers: { host: "app.test", cookie, expect: "100-continue", "content-length": "5" } }, (res) => {
          let d = "";
          res.on("data", (c: Buffer) => (d += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: d }));
        });
        r.on("continue", () => r.end("hello"));
        r.on("error", reject);
      });
      assert.equal(expect.status, 200);
      assert.match(expect.body, /"body":"hello"/);
    });

    test("a 20 MB response streams through intact", async (t) => {
      if (!systemReady(t, ["oathtool"])) return;
      const { gw, cookie } = await rig(t);
      const n = 20 * 1024 * 1024;
      const digest = await new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
        request({ host: "127.0.0.1", port: gw.port, path: `/big?n=${n}`, headers: { host: "app.test", cookie } }, (res) => {
          const h = createHash("sha256");
          let bytes = 0;
          res.on("data", (c: Buffer) => {
            bytes += c.length;
            h.update(c);
          });
          res.on("end", () => resolve({ bytes, sha: h.digest("hex") }));
        })
          .on("error", reject)
          .end();
      });
      assert.equal(digest.bytes, n);
      assert.equal(digest.sha, createHash("sha256").update(Buffer.alloc(n, 0x61)).digest("hex"));
    });

    test("Connection: close from the client ends the connection after its response", async (t) => {
      if (!systemReady(t, ["oathtool"])) return;
      const { app, gw, cookie } = await rig(t);
      // Bytes pipelined after Connection: close are not a request.
      const out = await raw(gw.port, [get("/echo?1", cookie, "Connection: close\r\n") + get("/echo?ignored", cookie)], 3000);
      assert.deepEqual(statuses(out), [200]);
      assert.deepEqual(
        app.seen.map((s) => s.url),
        ["/echo?1"],
      );
    });
  });
}

describe("gateway proxy: safety and connection handling", () => {
  test("request smuggling shapes never reach the app: refused with 400, or the hidden bytes are a request of their own to the gateway", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { app, gw, cookie } = await rig(t);
    const hidden = "GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n";
    const attacks = [
      `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nContent-Length: ${hidden.length + 5}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
      `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${hidden}`,
      `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
      `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${hidden}`,
      `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${hidden}`,
      `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
      `GET /echo HTTP/1.1\nHost: app.test\r\nCookie: ${cookie}\r\n\r\n${hidden}`,
      `POST /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${hidden}`,
    ];
    for (const attack of attacks) {
      const out = await raw(gw.port, [attack], 1500);
      assert.ok(/^HTTP\/1\.1 400 /.test(out) || out === "", `${JSON.stringify(attack.slice(0, 120))}: ${out.slice(0, 60)}`);
      assert.ok(!app.seen.some((s) => s.url === "/admin"), "the hidden request never reached the app");
    }
    assert.ok(
      app.seen.every((s) => s.body === ""),
      "no smuggled bytes in a body either",
    );
  });

  test("one connection moves from proxying to the gateway's pages and back; a logout ends proxying on it", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { app, gw, cookie } = await rig(t);
    const out = await raw(gw.port, [get("/echo?a", cookie), get("/_otpgate/login", cookie), get("/echo?b", cookie), get("/echo?c", "otpgate_session=forged")]);
    assert.deepEqual(statuses(out), [200, 200, 200, 302]);
    assert.match(out, /<h1>Sign in<\/h1>/);
    assert.deepEqual(
      app.seen.map((s) => s.url),
      ["/echo?a", "/echo?b"],
    );
    // Dot segments normalise like the pages do.
    const tricky = await raw(gw.port, [get("/x/../_otpgate/login", cookie)]);
    assert.deepEqual(statuses(tricky), [200]);
    assert.match(tricky, /<h1>Sign in<\/h1>/, "a path that normalises to the login page gets the login page");
  });

  test("the app closing an idle connection is invisible to the browser; the app down answers 502 and counts", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { app, gw, cookie } = await rig(t, 150);
    const keep = connect(gw.port, "127.0.0.1");
    await new Promise((r) => keep.once("connect", r));
    const replies: string[] = [];
    keep.on("data", (d: Buffer) => replies.push(d.toString("latin1")));
    keep.write(get("/echo?before-idle", cookie));
    await new Promise((r) => setTimeout(r, 500)); // the app's keep-alive timeout (150 ms) closes its side
    keep.write(get("/echo?after-idle", cookie));
    await new Promise((r) => setTimeout(r, 500));
    keep.destroy();
    assert.deepEqual(statuses(replies.join("")), [200, 200], "the request after the app's close was sent again on a new connection");
    assert.ok(app.seen.some((s) => s.url === "/echo?after-idle"));

    app.server.closeAllConnections();
    app.close();
    await new Promise((r) => setTimeout(r, 100));
    const down = await raw(gw.port, [get("/echo?down", cookie)], 2000);
    assert.deepEqual(statuses(down), [502]);
    const metrics = await http(gw.base, "GET", "/_otpgate/metrics");
    assert.match(metrics.body, /otpgate_upstream_errors_total [1-9]/);
  });

  test("oversized heads get 431; a client that never finishes its head holds up nobody", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { app, gw, cookie } = await rig(t);
    const big = await raw(gw.port, [`GET /echo HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`], 1500);
    assert.match(big, /^HTTP\/1\.1 431 /);
    const slow = connect(gw.port, "127.0.0.1");
    await new Promise((r) => slow.once("connect", r));
    slow.write("GET /echo HTTP/1.1\r\nHost: app.");
    const other = await raw(gw.port, [get("/echo?other", cookie)]);
    assert.deepEqual(statuses(other), [200], "a slow client does not hold up others");
    slow.destroy();
    assert.equal(app.seen.length, 1);
  });
});

describe("gateway: slow request heads (slowloris) are cut on every path", () => {
  test("a head that stays incomplete is closed after head_timeout, on a fresh connection and after a hand-over to the pages", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { gw, cookie } = await rig(t, undefined, { head_timeout: "1s" });
    const closedAfter = async (first: string): Promise<number> => {
      const s = connect(gw.port, "127.0.0.1");
      await new Promise((r) => s.once("connect", r));
      const started = Date.now();
      s.on("data", () => undefined);
      s.on("error", () => undefined); // the gateway may reset a connection it cuts while we write
      s.write(first);
      // Drip a byte now and then, as a slowloris client does, until the gateway hangs up.
      const drip = setInterval(() => s.write("X"), 200);
      const closed = await Promise.race([new Promise((r) => s.once("close", () => r(true))), new Promise((r) => setTimeout(() => r(false), 8000))]);
      clearInterval(drip);
      s.destroy();
      return closed ? Date.now() - started : Infinity;
    };
    const fresh = await closedAfter("GET /echo HTTP/1.1\r\nHost: app.test\r\nX-Slow: ");
    assert.ok(fresh >= 900 && fresh < 4000, `fresh connection: closed after ${fresh} ms`);
    const handed = await closedAfter(`GET /_otpgate/login HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\n\r\nGET /echo HTTP/1.1\r\nHost: app.test\r\nX-Slow: `);
    assert.ok(handed >= 900 && handed < 5000, `after a page on the connection: closed after ${handed} ms`);
  });
});
