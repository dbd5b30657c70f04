// Test rig for otpgate gateway: an upstream app that records what reaches it (and echoes upgraded
// connections), the gateway as a child process with its own config, and a small cookie-keeping client.
// By default the gateway runs as it should in production: started as root with `user:` set to a
// throwaway system user (it drops to it after binding) and `decision_socket:` pointing to a real
// otpgate server (root, its socket for that user's group); its keys and sessions live in a
// directory that user owns (RunningGateway.stateDir). `asRoot` keeps the old in-process layout.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import { chmodSync, chownSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { CLI, sh, uniqueName } from "./system.js";

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
    const accept = createHash("sha1")
      .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
      .digest("base64");
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
  /** The gateway's process id (its /proc/PID/status shows whom it runs as). */
  readonly pid: number;
  /** The configuration file the gateway runs with (admin commands: invite, passwd, gateway sessions). */
  readonly configPath: string;
  /** The gateway's own user (config user:) and the directory it owns (keys, sessions, password files go there); null with asRoot. */
  readonly gatewayUser: GatewayUser | null;
  /** The directory owned by the gateway's user (or `dir` with asRoot): put keys, sessions and password files here. */
  readonly stateDir: string;
  /** otpgate server, the decision service the gateway asks (null with asRoot). */
  readonly server: DecisionServer | null;
  readonly logs: () => string[];
  /** The log arrives on a pipe, independently of the HTTP reply: wait for a line rather than race it. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): void;
}

export interface GatewayUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface DecisionServer {
  readonly socket: string;
  readonly pid: number;
  readonly logs: () => string[];
  /** Stop it (SIGTERM) and wait until it has exited. */
  stop(): Promise<void>;
  /** Start it again on the same socket (after stop()). */
  restart(): Promise<void>;
}

export interface GatewayOptions {
  /**
   * The old layout: the gateway runs as root, decides in-process (no server, no user:). Only for
   * tests of that mode; by default the gateway runs as a throwaway unprivileged user with
   * decision_socket pointing to a real otpgate server (as root, its socket group that user's group).
   */
  readonly asRoot?: boolean;
}

const cleanups = new Set<() => void>();
process.once("exit", () => {
  for (const c of cleanups) c();
});

/** A system user of its own for a gateway (no home, no shell), removed by remove() or when the test process exits. */
export function gatewaySystemUser(): GatewayUser & { remove(): void } {
  const name = uniqueName("otpgw").slice(0, 14);
  sh("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name]);
  const remove = () => {
    cleanups.delete(remove);
    spawnSync("userdel", ["-f", name], { stdio: "ignore" });
    spawnSync("groupdel", [name], { stdio: "ignore" });
  };
  cleanups.add(remove);
  const [uid, gid] = sh("getent", ["passwd", name]).trim().split(":").slice(2, 4).map(Number);
  return { name, uid: uid!, gid: gid!, remove };
}

/** otpgate server (API only) on a socket in `dir`, reachable by `group`, reading invitations from `invitesDir`. */
export async function startDecisionServer(dir: string, group: string, options: { invitesDir: string; stateFiles?: string | undefined }): Promise<DecisionServer> {
  const stateDir = join(dir, "server");
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const socket = join(dir, "run", "server.sock");
  const args = [
    CLI,
    "server",
    "--no-radius",
    "--socket",
    socket,
    "--socket-group",
    group,
    "--state-dir",
    stateDir,
    "--invites-dir",
    options.invitesDir,
    ...(options.stateFiles ? ["--state", options.stateFiles] : []),
  ];
  let child: ChildProcess;
  let out = "";
  const start = async () => {
    const c = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    const kill = () => c.kill("SIGKILL");
    cleanups.add(kill);
    c.once("exit", () => cleanups.delete(kill));
    c.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      let err = "";
      c.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        if (err.includes("API listening")) resolve();
      });
      c.once("exit", () => reject(new Error(`otpgate server exited: ${err}`)));
    });
  };
  await start();
  return {
    socket,
    get pid() {
      return child.pid!;
    },
    logs: () => out.split("\n").filter(Boolean),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      }),
    restart: start,
  };
}

export async function startGateway(dir: string, config: Record<string, unknown>, options: GatewayOptions = {}): Promise<RunningGateway> {
  let layout: Layout | null = null;
  if (!options.asRoot) layout = await unprivilegedLayout(dir, config);
  // A random port can be taken by another test's server: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOn(41000 + Math.floor(Math.random() * 15000), dir, config, layout);
    } catch (err) {
      if (attempt >= 5 || !/address is in use/.test((err as Error).message)) {
        layout?.teardown();
        throw err;
      }
    }
  }
}

/** Where startGateway keeps the gateway user's files (keys, sessions; a test's password file goes here too). */
export const gatewayStateDir = (dir: string): string => join(dir, "gateway");

interface Layout {
  readonly user: GatewayUser;
  readonly stateDir: string;
  readonly server: DecisionServer;
  readonly extra: Record<string, unknown>;
  teardown(): void;
}

/**
 * The gateway's user (a throwaway system user), the directory it owns (`dir`/gateway: keys and
 * sessions), and otpgate server as root with its socket in `dir`/run for that user's group.
 * `dir` stays root's (invitations live there, read by the server) and is opened for traversal.
 */
const usersByDir = new Map<string, GatewayUser & { remove(): void }>();

async function unprivilegedLayout(dir: string, config: Record<string, unknown>): Promise<Layout> {
  // One user per directory, kept across restarts of the gateway (its files stay its own), removed when the test process exits.
  const user = usersByDir.get(dir) ?? gatewaySystemUser();
  usersByDir.set(dir, user);
  chmodSync(dir, 0o711);
  // Files a test put there before the start (a password file) become the gateway user's, as an admin would chown them.
  const stateDir = gatewayStateDir(dir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  for (const name of ["", ...readdirSync(stateDir)]) chownSync(join(stateDir, name), user.uid, user.gid);
  const invitesDir = typeof config.invites_dir === "string" ? config.invites_dir : "/var/lib/otpgate/invites";
  const server = await startDecisionServer(dir, user.name, { invitesDir, stateFiles: typeof config.state_files === "string" ? config.state_files : undefined });
  return {
    user,
    stateDir,
    server,
    extra: { user: user.name, decision_socket: server.socket, keys_file: join(stateDir, "gateway.keys") },
    teardown: () => void server.stop(),
  };
}

async function startGatewayOn(port: number, dir: string, config: Record<string, unknown>, layout: Layout | null): Promise<RunningGateway> {
  const settings: Record<string, unknown> = { listen: `127.0.0.1:${port}`, keys_file: join(dir, "gateway.keys"), ...layout?.extra, ...config };
  const lines = Object.entries(settings).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  const path = join(dir, "gateway.yaml");
  writeFileSync(path, lines.join("\n") + "\n");
  const child: ChildProcess = spawn(process.execPath, [CLI, "gateway", "--config", path], { stdio: ["ignore", "pipe", "pipe"] });
  const kill = () => child.kill("SIGKILL");
  cleanups.add(kill);
  child.once("exit", () => cleanups.delete(kill));
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
    pid: child.pid!,
    configPath: path,
    gatewayUser: layout?.user ?? null,
    stateDir: layout?.stateDir ?? dir,
    server: layout?.server ?? null,
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
      layout?.teardown();
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
    const req = request(
      {
        hostname: u.hostname,
        port: u.port,
        method,
        path,
        headers: body === undefined ? headers : { "content-type": "application/x-www-form-urlencoded", "content-length": String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        let data = "";
        res.on("data", (d: Buffer) => (data += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      },
    );
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

export const cookieHeader = (cookies: Record<string, string>) =>
  Object.entries(cookies)
    .map(([k, v]) => `${k}=${v}`)
    .join("; ");

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
