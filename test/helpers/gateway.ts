// Test rig for otpgate gateway: an upstream app that records what reaches it (and echoes upgraded
// connections), the gateway as a child process with its own config, and a small cookie-keeping client.

import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { CLI } from "./system.js";

export interface Upstream {
  readonly port: number;
  readonly seen: { method: string; url: string; headers: IncomingHttpHeaders }[];
  close(): void;
}

export async function startUpstream(): Promise<Upstream> {
  const seen: Upstream["seen"] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    res.writeHead(200, { "content-type": "text/plain", connection: "keep-alive" });
    res.end(`upstream page for ${req.headers["remote-user"] ?? "nobody"}\n`);
  });
  server.on("upgrade", (req, socket) => {
    seen.push({ method: "UPGRADE", url: req.url ?? "", headers: req.headers });
    const key = req.headers["sec-websocket-key"];
    if (typeof key !== "string") {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
      socket.pipe(socket);
      return;
    }
    // A minimal WebSocket echo (RFC 6455): unmask each client text frame, send it back unmasked.
    const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on("data", (frame: Buffer) => {
      const len = frame[1]! & 0x7f;
      if ((frame[0]! & 0x0f) !== 1 || len > 125) return;
      const mask = frame.subarray(2, 6);
      const payload = Buffer.from(frame.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]!));
      socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { port, seen, close: () => server.close() };
}

export interface RunningGateway {
  readonly port: number;
  readonly base: string;
  readonly logs: () => string[];
  /** The log arrives on a pipe, independently of the HTTP reply: wait for a line rather than race it. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): void;
}

export async function startGateway(dir: string, config: Record<string, unknown>): Promise<RunningGateway> {
  // A random port can be taken by another test's server: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOn(41000 + Math.floor(Math.random() * 15000), dir, config);
    } catch (err) {
      if (attempt >= 5 || !/address is in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startGatewayOn(port: number, dir: string, config: Record<string, unknown>): Promise<RunningGateway> {
  const lines = [`listen: 127.0.0.1:${port}`, `keys_file: ${join(dir, "gateway.keys")}`];
  for (const [k, v] of Object.entries(config)) lines.push(`${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  const path = join(dir, "gateway.yaml");
  writeFileSync(path, lines.join("\n") + "\n");
  const child: ChildProcess = spawn(process.execPath, [CLI, "gateway", "--config", path], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let err = "";
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("listening")) resolve();
    });
    child.on("exit", () => reject(new Error(`gateway exited: ${err}`)));
  });
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    logs: () => out.split("\n").filter(Boolean),
    waitForLog: async (pattern, timeoutMs = 3000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = out.split("\n").find((l) => pattern.test(l));
        if (hit !== undefined) return hit;
        if (Date.now() > deadline) throw new Error(`no gateway log line matching ${pattern} within ${timeoutMs} ms; got:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: () => {
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      child.stdout!.destroy();
      child.stderr!.destroy();
      child.unref();
    },
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One HTTP request with explicit headers (no redirects followed, no cookie jar). */
export function http(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = request({ hostname: u.hostname, port: u.port, method, path, headers: body === undefined ? headers : { "content-type": "application/x-www-form-urlencoded", "content-length": String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let data = "";
      res.on("data", (d: Buffer) => (data += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export function cookiesFrom(reply: Reply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of reply.headers["set-cookie"] ?? []) {
    const [pair] = c.split(";");
    const eq = pair!.indexOf("=");
    out[pair!.slice(0, eq)] = pair!.slice(eq + 1);
  }
  return out;
}

export const cookieHeader = (cookies: Record<string, string>) => Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join("; ");

/** A masked WebSocket text frame (clients must mask), payload up to 125 bytes. */
export function wsTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
}

export const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** Open a WebSocket through the gateway and check the echo of one text frame. */
export function upgradeEcho(port: number, cookie: string): Promise<{ status: string; echo: string; head: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => {
      s.write(`GET /socket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\nCookie: ${cookie}\r\n\r\n`);
    });
    let data = "";
    let sent = false;
    const head = () => data.slice(0, data.indexOf("\r\n\r\n") + 4);
    s.on("data", (d: Buffer) => {
      data += d.toString("latin1");
      if (!sent && data.includes("\r\n\r\n")) {
        sent = true;
        if (data.startsWith("HTTP/1.1 101")) s.write(wsTextFrame("ping through the tunnel"));
        else {
          s.destroy();
          resolve({ status: data.split("\r\n")[0]!, echo: "", head: head() });
        }
      }
      if (data.includes("ping through the tunnel")) {
        s.destroy();
        resolve({ status: data.split("\r\n")[0]!, echo: "ping through the tunnel", head: head() });
      }
    });
    s.on("error", reject);
    setTimeout(() => {
      s.destroy();
      resolve({ status: data.split("\r\n")[0] ?? "", echo: "", head: head() });
    }, 5000);
  });
}

export async function loginForm(gw: RunningGateway, rd = "/"): Promise<{ csrf: string; cookies: Record<string, string>; page: Reply }> {
  const page = await http(gw.base, "GET", `/_otpgate/login?rd=${encodeURIComponent(rd)}`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
  return { csrf, cookies: cookiesFrom(page), page };
}

/** A sign-in through the form; `extra` adds fields (a password). */
export async function login(gw: RunningGateway, user: string, code: string, rd = "/", extra: Record<string, string> = {}): Promise<Reply> {
  const f = await loginForm(gw, rd);
  const body = new URLSearchParams({ csrf: f.csrf, rd, user, code, ...extra }).toString();
  return http(gw.base, "POST", "/_otpgate/login", { cookie: cookieHeader(f.cookies) }, body);
}
