// The gateway's shell passes a client going away on to the app request (GatewayRequest.onAbort →
// undici's dispatch controller), without an AbortController per request: a long poll whose client
// leaves must not keep the app's request open, and a streamed answer whose client leaves stops.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { describe, test, type TestContext } from "node:test";
import { cookiesFrom, login, startGateway } from "../helpers/gateway.js";
import { enrolledUser, oathTotp, systemReady, tempDir } from "../helpers/system.js";

async function rig(t: TestContext) {
  const events: string[] = [];
  const app = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? "/";
    events.push(`start ${path}`);
    res.once("close", () => events.push(`${res.writableFinished ? "finished" : "closed"} ${path}`));
    if (path === "/poll") return; // never answers: a long poll
    if (path === "/stream") {
      res.writeHead(200, { "content-type": "text/plain" });
      const tick = setInterval(() => res.write("tick\n"), 20);
      res.once("close", () => clearInterval(tick));
      return;
    }
    res.end("ok\n");
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  t.after(() => app.close());
  const gw = await startGateway(tempDir(t), { public_url: "http://app.test", upstream: `http://127.0.0.1:${(app.address() as { port: number }).port}`, allowed_hosts: ["app.test"] });
  t.after(() => gw.stop());
  const { user, secret } = enrolledUser(t);
  const ok = await login(gw, user.name, oathTotp(secret));
  assert.equal(ok.status, 303);
  return { gw, events, cookie: `otpgate_session=${cookiesFrom(ok).otpgate_session}` };
}

/** Open a connection, send a GET, wait `ms` (collecting what comes), then leave. */
function leaveAfter(port: number, path: string, cookie: string, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(`GET ${path} HTTP/1.1\r\nHost: app.test\r\nCookie: ${cookie}\r\n\r\n`));
    let got = "";
    s.on("data", (d: Buffer) => (got += d.toString("latin1")));
    s.on("error", reject);
    setTimeout(() => {
      s.destroy();
      resolve(got);
    }, ms);
  });
}

async function until(check: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe("gateway: a client that goes away", () => {
  test("before the app answers (a long poll): the app's request is closed, not left waiting", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { gw, events, cookie } = await rig(t);
    assert.equal(await leaveAfter(gw.port, "/poll", cookie, 300), "");
    assert.ok(events.includes("start /poll"), "the request reached the app");
    assert.ok(await until(() => events.includes("closed /poll")), `the app's request was closed after the client left: ${events.join(", ")}`);
  });

  test("while the answer streams: the app's response is closed; other requests are unaffected", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { gw, events, cookie } = await rig(t);
    const got = await leaveAfter(gw.port, "/stream", cookie, 300);
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.match(got, /tick\n/);
    assert.ok(await until(() => events.includes("closed /stream")), `the app's streaming response was closed after the client left: ${events.join(", ")}`);
    const after = await leaveAfter(gw.port, "/plain", cookie, 300);
    assert.match(after, /^HTTP\/1\.1 200 [^]*ok\n$/);
    assert.ok(events.includes("finished /plain"));
  });
});
