// The smuggling corpus (issue 9): raw bytes through a real socket to a running gateway, for a
// signed-in attacker and for an anonymous one; each case asserts what the app actually received
// (how many requests, with which Remote-User, which bodies, no trailers, no forged identity or
// forwarding headers, no upgrade) and what came back on the attacker's connection.
//
// The app is a recording app: it keeps the exact bytes of every connection and parses them with
// node:http's lenient parser (the kind of app a gateway must protect). A hidden request always
// asks for /smuggled with `Remote-User: victim` and no cookie: it must never reach the app (through
// the gateway it is a request without a session and gets the login redirect).
import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { connect, createServer as createNetServer, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { test } from "node:test";
import { cookiesFrom, login, startGateway } from "../helpers/gateway.js";
import { enrolledUser, oathTotp, systemReady, tempDir } from "../helpers/system.js";

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly rawTrailers: string[];
  readonly body: string;
  readonly connection: number;
}

interface RecordingApp {
  readonly port: number;
  readonly requests: Seen[];
  readonly upgrades: Seen[];
  /** Every byte each app connection received, in order. */
  readonly bytes: string[];
  reset(): void;
  close(): void;
}

/** A node:http app fed through a recording shim, so the exact bytes are kept next to what was parsed. */
async function startRecordingApp(): Promise<RecordingApp> {
  const requests: Seen[] = [];
  const upgrades: Seen[] = [];
  const bytes: string[] = [];
  const ids = new WeakMap<object, number>();
  const app = createHttpServer({ insecureHTTPParser: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("latin1");
      requests.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, body, connection: ids.get(req.socket) ?? -1 });
      const user = header(req, "remote-user");
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`app says hello to ${user ?? "nobody"} at ${req.url}\n`);
    });
  });
  app.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
    upgrades.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders, rawTrailers: [], body: "", connection: ids.get(socket) ?? -1 });
    socket.end("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n");
  });
  const server: Server = createNetServer((sock: Socket) => {
    const id = bytes.push("") - 1;
    const shim = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        sock.write(chunk, cb);
      },
      final(cb) {
        sock.end();
        cb();
      },
      destroy(err, cb) {
        sock.destroy();
        cb(err);
      },
    });
    Object.assign(shim, { remoteAddress: sock.remoteAddress, remotePort: sock.remotePort, setTimeout: () => shim, setNoDelay: () => shim, setKeepAlive: () => shim });
    ids.set(shim, id);
    sock.on("data", (d: Buffer) => {
      bytes[id] += d.toString("latin1");
      shim.push(d);
    });
    sock.on("end", () => shim.push(null));
    sock.on("error", () => shim.destroy());
    sock.on("close", () => shim.destroy());
    app.emit("connection", shim);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    requests,
    upgrades,
    bytes,
    reset: () => {
      requests.length = 0;
      upgrades.length = 0;
      bytes.fill("");
    },
    close: () => server.close(),
  };
}

function header(req: { rawHeaders: string[] }, name: string): string | undefined {
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) return req.rawHeaders[i + 1];
  return undefined;
}

function headerNames(seen: Seen): string[] {
  return seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

/** Send bytes (pieces a little apart) and collect the answer until the gateway closes or goes quiet. */
function exchange(port: number, pieces: (string | Buffer)[], quietMs = 500): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let data = "";
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(data);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    s.on("connect", async () => {
      for (const p of pieces) {
        if (s.destroyed) break;
        s.write(p);
        await new Promise((r) => setTimeout(r, 15));
      }
      arm();
    });
    s.on("data", (d: Buffer) => {
      data += d.toString("latin1");
      arm();
    });
    s.on("error", () => undefined);
    s.on("close", done);
  });
}

const statuses = (text: string) => [...text.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));

const HIDDEN = "GET /smuggled HTTP/1.1\r\nHost: app.test\r\nRemote-User: victim\r\nX-Forwarded-User: victim\r\n\r\n";
const HIDDEN_CHUNKED = `${HIDDEN.length.toString(16)}\r\n${HIDDEN}\r\n0\r\n\r\n`;
/** Headers the app must never receive from a client. */
const FORBIDDEN = [
  "remote_user",
  "x_forwarded_user",
  "x-remote-user",
  "x-forwarded-user",
  "forwarded",
  "x-forwarded-port",
  "x-forwarded-prefix",
  "x-original-url",
  "x-original-uri",
  "x-rewrite-url",
  "http2-settings",
  "transfer_encoding",
  "content_length",
];

interface Case {
  readonly name: string;
  /** The bytes to send, given the attacker's Cookie header value ("" when anonymous). */
  readonly send: (cookie: string) => (string | Buffer)[];
  /** Extra checks on what the app received and what the attacker got back. */
  readonly check?: (c: { app: RecordingApp; reply: string; signedIn: boolean; user: string }) => void;
  readonly quietMs?: number;
}

const req = (method: string, target: string, cookie: string, headers: string, body = "", version = "1.1") =>
  `${method} ${target} HTTP/${version}\r\nHost: app.test\r\n${cookie ? `Cookie: ${cookie}\r\n` : ""}${headers}\r\n${body}`;

/** A body the app must have received exactly as sent (when it received the request at all). */
const bodyIs = (url: string, body: string) => (c: { app: RecordingApp }) => {
  for (const r of c.app.requests.filter((r) => r.url === url)) assert.equal(r.body, body, `the body of ${url} as the app read it`);
};

const TE_OBFUSCATIONS = [
  "Transfer-Encoding: xchunked",
  "Transfer-Encoding : chunked",
  "Transfer-Encoding:\tchunked",
  "Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
  "Transfer-Encoding: x\r\nTransfer-Encoding: chunked",
  "Transfer-Encoding: chunked, identity",
  "Transfer-Encoding: identity, chunked",
  "Transfer-Encoding: gzip, chunked",
  'Transfer-Encoding: "chunked"',
  "Transfer-Encoding: cHuNkEd",
  "Transfer-Encoding: chunked\x0b",
  "Transfer-Encoding: chunk",
  "X-Pad: x\r\n Transfer-Encoding: chunked",
  "Transfer-Encoding\r\n : chunked",
  "Transfer_Encoding: chunked",
  "Transfer-Encoding: \x00chunked",
];

const CASES: Case[] = [
  { name: "CL.TE", send: (c) => [req("POST", "/cl-te", c, `Content-Length: ${5 + HIDDEN.length}\r\nTransfer-Encoding: chunked\r\n`, "0\r\n\r\n" + HIDDEN)] },
  { name: "TE.CL", send: (c) => [req("POST", "/te-cl", c, "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", HIDDEN_CHUNKED)] },
  { name: "two Content-Lengths", send: (c) => [req("POST", "/cl-cl", c, `Content-Length: 0\r\nContent-Length: ${HIDDEN.length}\r\n`, HIDDEN)] },
  { name: "Content-Length with a sign", send: (c) => [req("POST", "/cl-sign", c, `Content-Length: +${HIDDEN.length}\r\n`, HIDDEN)] },
  ...TE_OBFUSCATIONS.map<Case>((te, i) => ({
    name: `TE obfuscation ${i + 1}: ${JSON.stringify(te)} with Content-Length`,
    send: (c) => [req("POST", `/te-${i + 1}`, c, `${te}\r\nContent-Length: 5\r\n`, "0\r\n\r\n" + HIDDEN)],
  })),
  ...TE_OBFUSCATIONS.map<Case>((te, i) => ({
    name: `TE obfuscation ${i + 1}: ${JSON.stringify(te)} alone`,
    send: (c) => [req("POST", `/te-alone-${i + 1}`, c, `${te}\r\n`, "0\r\n\r\n" + HIDDEN)],
  })),
  // Finding 1: the framing header named in Connection was dropped while its body was still sent.
  {
    name: "Content-Length named in Connection (POST)",
    send: (c) => [req("POST", "/conn-cl", c, `Content-Length: ${HIDDEN.length}\r\nConnection: content-length\r\n`, HIDDEN)],
    check: bodyIs("/conn-cl", HIDDEN),
  },
  {
    name: "Content-Length named in Connection (GET)",
    send: (c) => [req("GET", "/conn-cl-get", c, `Content-Length: ${HIDDEN.length}\r\nConnection: keep-alive, Content-Length\r\n`, HIDDEN)],
    check: bodyIs("/conn-cl-get", HIDDEN),
  },
  {
    name: "Transfer-Encoding named in Connection",
    send: (c) => [req("POST", "/conn-te", c, "Transfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n", HIDDEN_CHUNKED)],
    check: bodyIs("/conn-te", HIDDEN),
  },
  { name: "Host and Cookie named in Connection", send: (c) => [req("GET", "/conn-host", c, "Connection: host, cookie, remote-user\r\n")] },
  // Finding 2: bodies on methods whose requests Node's client did not frame.
  ...["GET", "HEAD", "DELETE", "OPTIONS"].flatMap<Case>((m) => [
    {
      name: `${m} with a chunked body`,
      send: (c) => [req(m, `/${m.toLowerCase()}-chunked`, c, "Transfer-Encoding: chunked\r\n", HIDDEN_CHUNKED)],
      check: bodyIs(`/${m.toLowerCase()}-chunked`, HIDDEN),
    },
    {
      name: `${m} with a chunked body on the old node:http route (%-encoded path)`,
      send: (c) => [req(m, `/${m.toLowerCase()}%2Dchunked`, c, "Transfer-Encoding: chunked\r\n", HIDDEN_CHUNKED)],
      check: bodyIs(`/${m.toLowerCase()}%2Dchunked`, HIDDEN),
    },
    {
      name: `${m} with a Content-Length body`,
      send: (c) => [req(m, `/${m.toLowerCase()}%2Dlength`, c, `Content-Length: ${HIDDEN.length}\r\n`, HIDDEN)],
      check: bodyIs(`/${m.toLowerCase()}%2Dlength`, HIDDEN),
    },
  ]),
  {
    name: "GET with a chunked body after Expect: 100-continue",
    send: (c) => [req("GET", "/expect", c, "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n"), HIDDEN_CHUNKED],
    check: bodyIs("/expect", HIDDEN),
  },
  {
    name: "HTTP/1.0 GET with a Content-Length body and keep-alive",
    send: (c) => [req("GET", "/ten", c, `Connection: keep-alive\r\nContent-Length: ${HIDDEN.length}\r\n`, HIDDEN, "1.0")],
    check: bodyIs("/ten", HIDDEN),
  },
  {
    name: "a page of the gateway first, then a GET with a chunked body on the same connection",
    send: (c) => [req("GET", "/_otpgate/login", c, ""), req("GET", "/after-page", c, "Transfer-Encoding: chunked\r\n", HIDDEN_CHUNKED)],
    check: bodyIs("/after-page", HIDDEN),
  },
  // More header lines than node:http kept (maxHeadersCount 100 truncated the framing header).
  {
    name: "101+ header lines with the Content-Length last",
    send: (c) => [req("GET", "/many%2Dheaders", c, Array.from({ length: 101 }, (_, i) => `X-Pad-${i}: ${i}\r\n`).join("") + `Content-Length: ${HIDDEN.length}\r\n`, HIDDEN)],
    check: ({ app, reply }) => {
      assert.equal(app.requests.length, 0, "refused, not truncated");
      assert.deepEqual(statuses(reply).slice(0, 1), [431]);
    },
  },
  {
    name: "chunk trailers carrying Remote-User",
    send: (c) => [req("POST", "/trailers", c, "Transfer-Encoding: chunked\r\nTrailer: Remote-User\r\n", "4\r\nabcd\r\n0\r\nRemote-User: victim\r\nX-Forwarded-User: victim\r\n\r\n")],
    check: ({ app, signedIn }) => {
      if (!signedIn) return;
      const r = app.requests.find((x) => x.url === "/trailers");
      assert.ok(r, "the request itself passes");
      assert.equal(r.body, "abcd");
      assert.deepEqual(r.rawTrailers, [], "no trailers reach the app");
      assert.ok(!app.bytes.join("").includes("victim"), "the trailer bytes never reach the app");
    },
  },
  {
    name: "chunk extensions",
    send: (c) => [req("POST", "/ext", c, "Transfer-Encoding: chunked\r\n", '4;name="x\r\nRemote-User: victim";a=b\r\nabcd\r\n0;ext\r\n\r\n')],
    check: ({ app }) => {
      assert.ok(!app.bytes.join("").includes("name="), "extensions are not passed on");
    },
  },
  { name: "chunk extension with a quoted CRLF", send: (c) => [req("POST", "/ext2", c, "Transfer-Encoding: chunked\r\n", '4;x="\r\n"\r\nabcd\r\n0\r\n\r\n' + HIDDEN)] },
  { name: "chunk size beyond 2^53", send: (c) => [req("POST", "/huge", c, "Transfer-Encoding: chunked\r\n", "20000000000001\r\nabcd\r\n0\r\n\r\n" + HIDDEN)], quietMs: 800 },
  { name: "chunk size beyond 2^64", send: (c) => [req("POST", "/huger", c, "Transfer-Encoding: chunked\r\n", "1ffffffffffffffff\r\nabcd\r\n0\r\n\r\n" + HIDDEN)] },
  { name: "negative chunk size", send: (c) => [req("POST", "/neg", c, "Transfer-Encoding: chunked\r\n", "-4\r\nabcd\r\n0\r\n\r\n" + HIDDEN)] },
  // Finding 3: any Upgrade was tunnelled.
  {
    name: "h2c upgrade followed by the HTTP/2 preface",
    send: (c) => [req("GET", "/h2c", c, "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
    check: ({ app, reply }) => {
      assert.equal(app.upgrades.length, 0, "no upgrade reaches the app");
      assert.ok(!/^HTTP\/1\.1 101/m.test(reply), "no 101 to the client");
    },
  },
  {
    name: "Upgrade: websocket without a valid key",
    send: (c) => [req("GET", "/ws", c, "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n")],
    check: ({ app }) => assert.equal(app.upgrades.length, 0),
  },
  { name: "Upgrade: other token", send: (c) => [req("GET", "/tls", c, "Connection: Upgrade\r\nUpgrade: TLS/1.2\r\n")], check: ({ app }) => assert.equal(app.upgrades.length, 0) },
  {
    name: "CONNECT",
    send: (c) => [`CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n${c ? `Cookie: ${c}\r\n` : ""}\r\n`],
    check: ({ app }) => assert.equal(app.upgrades.length + app.requests.length, 0),
  },
  // Identity and forwarding headers (finding 4).
  {
    name: "identity and forwarding headers from the client",
    send: (c) => [
      req(
        "GET",
        "/identity",
        c,
        "Remote_User: victim\r\nX_Forwarded_User: victim\r\nX-Remote-User: victim\r\nRemote-User: victim\r\nX-Forwarded-User: victim\r\nX-Real-IP: 10.9.9.9\r\nForwarded: for=10.9.9.9;host=evil.test\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Prefix: /evil\r\nX-Original-URL: /admin\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\n",
      ),
    ],
    check: ({ app, signedIn }) => {
      if (!signedIn) return;
      const r = app.requests.find((x) => x.url === "/identity");
      assert.ok(r);
      assert.equal(header(r, "x-forwarded-for"), "127.0.0.1", "X-Forwarded-For from an untrusted peer is not believed");
      assert.notEqual(header(r, "x-forwarded-host"), "evil.test");
      assert.equal(header(r, "x-forwarded-proto"), "http");
    },
  },
  { name: "absolute-form target", send: (c) => [req("GET", "http://evil.test/smuggled", c, "")], check: ({ app }) => assert.equal(app.requests.length, 0) },
  { name: "asterisk-form target", send: (c) => [req("OPTIONS", "*", c, "")], check: ({ app }) => assert.equal(app.requests.length, 0) },
  {
    name: "session cookie written with a space before '='",
    send: (c) => [req("GET", "/spaced-cookie", c ? c.replace("otpgate_session=", "otpgate_session =") + "; theme=dark" : "", "")],
    check: ({ app, signedIn }) => {
      for (const r of app.requests) {
        const cookie = header(r, "cookie") ?? "";
        assert.ok(!/otpgate_session/.test(cookie), `the session cookie never reaches the app: ${cookie}`);
      }
      if (signedIn) assert.equal(app.requests.length, 1);
    },
  },
  { name: "bare LF line ends", send: (c) => [`POST /lf HTTP/1.1\nHost: app.test\n${c ? `Cookie: ${c}\n` : ""}Content-Length: ${HIDDEN.length}\nTransfer-Encoding: chunked\n\n0\n\n${HIDDEN}`] },
  { name: "header name with a space", send: (c) => [req("POST", "/space", c, `Content-Length : ${HIDDEN.length}\r\n`, HIDDEN)] },
];

test("gateway smuggling corpus", async (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const app = await startRecordingApp();
  t.after(() => app.close());
  const gw = await startGateway(tempDir(t), { public_url: "http://app.test", upstream: `http://127.0.0.1:${app.port}`, allowed_hosts: ["app.test"] });
  t.after(() => gw.stop());
  const users: { name: string; cookie: string }[] = [];
  for (let i = 0; i < 2; i++) {
    const { user, secret } = enrolledUser(t);
    const ok = await login(gw, user.name, oathTotp(secret));
    assert.equal(ok.status, 303);
    users.push({ name: user.name, cookie: `otpgate_session=${cookiesFrom(ok).otpgate_session}` });
  }

  for (const c of CASES) {
    for (const signedIn of [true, false]) {
      await t.test(`${c.name} (${signedIn ? "signed in" : "anonymous"})`, async () => {
        app.reset();
        const user = users[0]!;
        const reply = await exchange(gw.port, c.send(signedIn ? user.cookie : ""), c.quietMs);
        await new Promise((r) => setTimeout(r, 100));
        const where = `app received: ${JSON.stringify(app.requests.map((r) => `${r.method} ${r.url}`))}; attacker got: ${JSON.stringify(reply.slice(0, 200))}`;
        assert.ok(!app.requests.some((r) => r.url.includes("smuggled")), `a hidden request reached the app; ${where}`);
        for (const r of app.requests) {
          const names = headerNames(r);
          const identities = names.filter((n) => n === "remote-user");
          assert.equal(identities.length, 1, `exactly one Remote-User; ${where}`);
          assert.equal(header(r, "remote-user"), user.name, `the app sees only the signed-in user; ${where}`);
          assert.deepEqual(
            names.filter((n) => FORBIDDEN.includes(n)),
            [],
            `no client identity/forwarding headers; ${where}`,
          );
          for (const set of ["x-forwarded-for", "x-real-ip"]) {
            const values = names.flatMap((n, i) => (n === set ? [r.rawHeaders[2 * i + 1]] : []));
            assert.ok(values.length <= 1 && values.every((v) => v === "127.0.0.1"), `${set} only from the gateway: ${JSON.stringify(values)}; ${where}`);
          }
          assert.deepEqual(r.rawTrailers, [], `no trailers; ${where}`);
        }
        if (!signedIn) assert.equal(app.requests.length, 0, `nothing anonymous reaches the app; ${where}`);
        assert.ok(!reply.includes("victim"), `the attacker sees no response for the forged identity; ${where}`);
        c.check?.({ app, reply, signedIn, user: user.name });
      });
    }
  }

  await t.test("pipelining: two users on shared app connections each get their own responses, whatever one of them sends", async () => {
    app.reset();
    const [a, b] = users as [{ name: string; cookie: string }, { name: string; cookie: string }];
    const attacks = [
      req("GET", "/a%2D1", a.cookie, "Transfer-Encoding: chunked\r\n", HIDDEN_CHUNKED),
      req("GET", "/a-2", a.cookie, `Content-Length: ${HIDDEN.length}\r\nConnection: content-length\r\n`, HIDDEN),
      req("POST", "/a-3", a.cookie, "Transfer-Encoding: chunked\r\n", "0\r\nRemote-User: victim\r\n\r\n"),
    ];
    const victim = () => exchange(gw.port, [req("GET", "/b-1", b.cookie, "") + req("GET", "/b-2", b.cookie, "")], 400);
    const results = await Promise.all([exchange(gw.port, attacks, 400), victim(), exchange(gw.port, attacks, 400), victim()]);
    for (const reply of [results[1]!, results[3]!]) {
      assert.deepEqual(statuses(reply), [200, 200]);
      assert.match(reply, new RegExp(`hello to ${b.name} at /b-1\n[^]*hello to ${b.name} at /b-2\n`), "each of B's responses is B's own");
      assert.ok(!reply.includes(a.name) && !reply.includes("victim"));
    }
    for (const reply of [results[0]!, results[2]!]) assert.ok(!reply.includes(b.name), "A never gets B's response");
    assert.ok(!app.requests.some((r) => r.url.includes("smuggled")));
    for (const r of app.requests) assert.equal(header(r, "remote-user"), r.url.startsWith("/a") ? a.name : b.name);
  });
});

// Red team 1, F2 (CL.0): an app that does not read bodies on some methods (Python's http.server,
// many WSGI apps) reads a body the gateway framed correctly as the next request on its keep-alive
// connection, with any Remote-User in it. Bodies on GET/HEAD/TRACE are refused (400); every other
// request with a body (POST and PUT included: red team 2, F1) goes with `connection: close`, so the
// app never reads past it.
const PY_APP = `
import http.server, json, sys
LOG = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, body=b""):
        with open(LOG, "a") as f:
            f.write(json.dumps({"method": self.command, "target": self.path, "user": self.headers.get("Remote-User"), "body": body.decode("latin1")}) + "\\n")
        out = ("py app: hello %s at %s\\n" % (self.headers.get("Remote-User"), self.path)).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(out))); self.end_headers()
        if self.command != "HEAD": self.wfile.write(out)
    def do_GET(self): self.answer()
    do_HEAD = do_DELETE = do_OPTIONS = do_TRACE = do_MKCOL = do_LOCK = do_REPORT = do_GET
    # Red team 2, F1: handlers that answer without reading the body (do_POST not reading rfile, an
    # early 401/404): every method with a body, POST included.
    do_PUT = do_PATCH = do_QUERY = do_PROPFIND = do_PROPPATCH = do_GET
    def do_POST(self):
        if self.path != "/upload": return self.answer()
        n = int(self.headers.get("Content-Length") or 0); self.answer(self.rfile.read(n))
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
`;

test("a body-ignoring app (python http.server): a body never becomes a second request (CL.0)", async (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const { spawn } = await import("node:child_process");
  const { readFileSync, writeFileSync, existsSync } = await import("node:fs");
  const { join } = await import("node:path");
  const dir = tempDir(t);
  const logFile = join(dir, "py.log");
  writeFileSync(join(dir, "app.py"), PY_APP);
  const py = spawn("/usr/bin/python3", [join(dir, "app.py"), logFile], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => void py.kill());
  const port = await new Promise<number>((resolve, reject) => {
    py.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    py.once("exit", (code) => reject(new Error(`python app exited (${code})`)));
  });
  // All cases at once: 84 connections from 127.0.0.1 (beyond the default 64 per address).
  const gw = await startGateway(tempDir(t), { public_url: "http://app.test", upstream: `http://127.0.0.1:${port}`, allowed_hosts: ["app.test"], limits: { connections_per_address: 200 } });
  t.after(() => gw.stop());
  const users: { name: string; cookie: string }[] = [];
  for (let i = 0; i < 2; i++) {
    const { user, secret } = enrolledUser(t);
    const ok = await login(gw, user.name, oathTotp(secret));
    assert.equal(ok.status, 303);
    users.push({ name: user.name, cookie: `otpgate_session=${cookiesFrom(ok).otpgate_session}` });
  }
  const [alice, bob] = users as [{ name: string; cookie: string }, { name: string; cookie: string }];
  const seen = () =>
    existsSync(logFile)
      ? readFileSync(logFile, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { method: string; target: string; user: string })
      : [];
  // Every method and framing at once (each case's targets carry its name; alice's requests use her
  // own app connections, bob's his): a smuggled request would show as /transfer?case=<name>.
  const cases = ["GET", "HEAD", "TRACE", "DELETE", "OPTIONS", "MKCOL", "LOCK", "REPORT", "POST", "PUT", "PATCH", "QUERY", "PROPFIND", "PROPPATCH"].flatMap((method) =>
    ["length", "chunked"].map((framing) => ({ method, framing, name: `${method}-${framing}` })),
  );
  const results = await Promise.all(
    cases.map(async ({ method, framing, name }) => {
      const hidden = `POST /transfer?to=${alice.name}&case=${name} HTTP/1.1\r\nHost: app.test\r\nRemote-User: ${bob.name}\r\nContent-Length: 0\r\n\r\n`;
      const head = framing === "length" ? `Content-Length: ${hidden.length}\r\n` : "Transfer-Encoding: chunked\r\n";
      const body = framing === "length" ? hidden : `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
      // Connection: close (not forwarded: the app connection is the gateway's) ends each exchange at its answer.
      const close = "Connection: close\r\n";
      const reply = await exchange(gw.port, [req(method, `/innocent?case=${name}`, alice.cookie, head + close, body)], 3000);
      const [bobs, next] = await Promise.all([
        exchange(gw.port, [req("GET", `/bob-page?case=${name}`, bob.cookie, close)], 3000),
        exchange(gw.port, [req("GET", `/alice-next?case=${name}`, alice.cookie, close)], 3000),
      ]);
      return { method, name, reply, bobs, next };
    }),
  );
  await new Promise((r) => setTimeout(r, 200));
  const log = seen();
  for (const { method, name, reply, bobs, next } of results) {
    const ran = log.filter((e) => e.target.endsWith(`case=${name}`)).map((e) => `${e.method} ${e.target} as ${e.user}`);
    const where = `${name}: the app ran ${JSON.stringify(ran)}; alice got ${JSON.stringify(reply.slice(0, 120))}`;
    assert.ok(!ran.some((r) => r.includes("/transfer")), `the body ran as a request; ${where}`);
    assert.ok(
      ran.every((r) => r.endsWith(`as ${r.includes("bob-page") ? bob.name : alice.name}`)),
      where,
    );
    if (["GET", "HEAD", "TRACE"].includes(method)) {
      assert.deepEqual(statuses(reply), [400], `a body on ${method} is refused; ${where}`);
      assert.ok(!ran.some((r) => r.includes("innocent")), `nothing reaches the app; ${where}`);
    } else {
      // The app answers without reading the body and closes: with the body still unread, its kernel may
      // reset the connection, which discards the answer on the way (undici: 502). Either way nothing ran.
      assert.ok(
        [[200], [502]].some((s) => JSON.stringify(s) === JSON.stringify(statuses(reply))),
        `alice gets the app's answer or a 502; ${where}`,
      );
    }
    assert.match(bobs, new RegExp(`hello ${bob.name} at /bob-page`), `bob gets his own answer: ${JSON.stringify(bobs)}; ${where}`);
    // Alice's own next request (her pool) runs as her, on a connection that never carried the body.
    assert.match(next, new RegExp(`hello ${alice.name} at /alice-next`), `alice's next request is hers; ${where}`);
  }
  // An app that does read the body still gets it whole (a handler that reads rfile).
  const upload = await exchange(gw.port, [req("POST", "/upload", alice.cookie, "Content-Length: 5\r\nConnection: close\r\n", "hello")], 300);
  assert.deepEqual(statuses(upload), [200]);
  assert.equal((seen().find((e) => e.target === "/upload") as { body?: string } | undefined)?.body, "hello");
});
