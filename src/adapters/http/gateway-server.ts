// otpgate gateway: a login page, sessions, a forward-auth endpoint (nginx auth_request, Traefik,
// Caddy) and a reverse proxy (with WebSocket upgrades) that lets a request through to the app only
// with a valid session. Codes are checked by the same service and state files as otpgate verify.

import { Agent, createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { existsSync, readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { Regulator, checkSession, safeReturnUrl, type SessionData } from "../../core/web/index.js";
import { ConfigError } from "../../core/errors.js";
import { systemClock } from "../../platform/clock.js";
import { loadOrCreateKeys, unseal, type Keys } from "../../platform/seal.js";
import { listInvites } from "../../stores/invite-store.js";
import { readPasswordFile } from "../../stores/password-file.js";
import { createEnrollHandler } from "./enroll-handler.js";
import { createFastProxy } from "./fast-proxy.js";
import type { GatewayConfig } from "./gateway-config.js";
import { createLoginHandler } from "./login-handler.js";
import { createPageContext, parseCookies, withoutHopByHop, type GatewayLog } from "./page-context.js";
import { STYLE, loginPage, messagePage } from "./pages.js";

export type { GatewayLog } from "./page-context.js";

export interface Gateway {
  readonly server: Server;
  readonly metrics: Record<string, number>;
  close(): Promise<void>;
}

function tlsOptions(tls: NonNullable<GatewayConfig["tls"]>) {
  return { cert: readFileSync(tls.cert), key: readFileSync(tls.key), minVersion: "TLSv1.2" as const };
}

function withTls<T>(tls: NonNullable<GatewayConfig["tls"]>, make: (options: ReturnType<typeof tlsOptions>) => T): T {
  try {
    return make(tlsOptions(tls));
  } catch (err) {
    throw new ConfigError(`tls: ${tls.cert} and ${tls.key} cannot be used together (${(err as Error).message}); check that the key belongs to the certificate and both are PEM`);
  }
}

/** Files the configuration names, checked before listening (and by --check-config). */
export function preflight(config: GatewayConfig): string[] {
  const notes: string[] = [];
  if (config.tls) {
    withTls(config.tls, (options) => createTlsServer(options)).close();
    notes.push(`TLS with ${config.tls.cert}`);
  }
  if (config.passwordFile) notes.push(`password factor on: ${readPasswordFile(config.passwordFile).size} password(s) in ${config.passwordFile}`);
  if (existsSync(config.invitesDir)) notes.push(`${listInvites(config.invitesDir, systemClock.nowMs()).length} pending invitation(s)`);
  return notes;
}

export function createGateway(config: GatewayConfig, log: GatewayLog): Gateway {
  const keys: Keys = loadOrCreateKeys(config.keysFile);
  const ctx = createPageContext(config, keys, new Regulator(config.regulation), log);
  const { metrics, send, cookieAttrs } = ctx;
  const lastSeen = new Map<string, number>();
  const revoked = new Map<string, number>();
  const P = config.pagesPrefix;
  const loginUrl = (rd: string) => `${P}/login?rd=${encodeURIComponent(rd)}`;
  const returnPolicy = { allowedHosts: config.allowedHosts, fallback: "/" };
  const withPassword = config.passwordFile !== null;
  const handleLogin = createLoginHandler(ctx);
  const handleEnroll = createEnrollHandler(ctx);
  const fastPath = config.upstream !== null && config.proxyEngine === "fast";
  // Keep connections to the app open: a new TCP connection per request would halve throughput.
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });

  // Opening a sealed cookie (AES-GCM, JSON) once per request is most of a proxied request's own
  // cost; the opened content of recent cookies is kept (it is immutable; validity is checked anew).
  const opened = new Map<string, SessionData>();
  const sessionFromToken = (token: string | undefined): SessionData | null => {
    if (!token) return null;
    let data = opened.get(token);
    if (!data) {
      const raw = unseal<SessionData>(token, keys.seal);
      if (!raw || typeof raw.sid !== "string" || typeof raw.user !== "string" || typeof raw.createdAt !== "number" || typeof raw.lastSeenAt !== "number") return null;
      if (opened.size >= 10_000) opened.clear();
      opened.set(token, (data = raw));
    }
    if (revoked.has(data.sid)) return null;
    const now = systemClock.nowMs();
    const check = checkSession({ ...data, lastSeenAt: Math.max(data.lastSeenAt, lastSeen.get(data.sid) ?? 0) }, now, config.session);
    if (!check.valid) return null;
    if (lastSeen.size >= 50_000) prune(now);
    lastSeen.set(data.sid, now);
    return check.session;
  };
  const session = (req: IncomingMessage): SessionData | null => sessionFromToken(parseCookies(req.headers.cookie).get(config.cookieName));

  /** Bounded memory: forget activity older than the idle timeout and revocations past expiry. */
  const prune = (now: number) => {
    for (const [sid, t] of lastSeen) if (now - t >= config.session.idleMs) lastSeen.delete(sid);
    for (const [sid, until] of revoked) if (until <= now) revoked.delete(sid);
  };

  function originalUrl(req: IncomingMessage): string {
    const h = req.headers;
    const uri = String(h["x-forwarded-uri"] ?? h["x-original-uri"] ?? req.url ?? "/");
    const host = String(h["x-forwarded-host"] ?? h.host ?? config.publicUrl.host);
    const proto = String(h["x-forwarded-proto"] ?? config.publicUrl.protocol.replace(":", ""));
    return `${proto}://${host}${uri.startsWith("/") ? uri : "/"}`;
  }

  /** What the app is told: who signed in (never what the client claims), where the request came from; not our cookie. */
  function toApp(headers: Record<string, string | string[]>, req: IncomingMessage, user: string): Record<string, string | string[]> {
    delete headers["remote-user"];
    delete headers["x-forwarded-user"];
    const cookie = (req.headers.cookie ?? "").split(";").filter((c) => !c.trim().startsWith(`${config.cookieName}=`)).join(";").trim();
    if (cookie) headers.cookie = cookie;
    else delete headers.cookie;
    const forwardedFor = req.headers["x-forwarded-for"] ? `${req.headers["x-forwarded-for"]}, ${req.socket.remoteAddress}` : String(req.socket.remoteAddress);
    return Object.assign(headers, { "remote-user": user, "x-forwarded-for": forwardedFor, "x-forwarded-proto": config.publicUrl.protocol.replace(":", ""), "x-forwarded-host": String(req.headers.host ?? config.publicUrl.host), host: config.upstream!.host });
  }

  function proxy(req: IncomingMessage, res: ServerResponse, user: string): void {
    const upstream = config.upstream!;
    const headers = toApp(withoutHopByHop(req.headers), req, user);
    const up = httpRequest({ hostname: upstream.hostname, port: upstream.port || 80, method: req.method, path: req.url, headers, agent }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, withoutHopByHop(ures.headers));
      ures.pipe(res);
    });
    up.on("error", () => {
      metrics.upstream_errors!++;
      if (!res.headersSent) send(res, 502, messagePage("Application unavailable", "The application behind the gateway did not answer.", P));
      else res.destroy();
    });
    req.pipe(up);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway.invalid");
    const path = url.pathname;
    if (path === "/healthz") return void res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    if (path === `${P}/metrics`) {
      return void res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(Object.entries(metrics).map(([k, v]) => `# TYPE otpgate_${k}_total counter\notpgate_${k}_total ${v}\n`).join(""));
    }
    if (path === `${P}/style.css`) return void res.writeHead(200, { "content-type": "text/css", "cache-control": "max-age=3600" }).end(STYLE);
    if (path === `${P}/login` && req.method === "GET") {
      const cookies: string[] = [];
      const csrf = ctx.csrfFor(req, { cookies });
      return send(res, 200, loginPage({ prefix: P, csrf, returnTo: safeReturnUrl(url.searchParams.get("rd"), returnPolicy), password: withPassword }), cookies.length ? { "set-cookie": cookies } : {});
    }
    if (path === `${P}/login` && req.method === "POST") return handleLogin(req, res);
    if (path === `${P}/logout` && req.method === "POST") {
      const form = await ctx.readForm(req);
      if (!form || !ctx.csrfOk(req, form)) return send(res, 403, messagePage("Form expired", "Please load the page again.", P));
      const s = session(req);
      if (s) {
        if (revoked.size >= 50_000) prune(systemClock.nowMs());
        revoked.set(s.sid, s.createdAt + config.session.absoluteMs);
        lastSeen.delete(s.sid);
      }
      log({ event: "logout", user: s?.user ?? "-", ip: ctx.clientIp(req) });
      return send(res, 303, "", { location: `${P}/login`, "set-cookie": `${config.cookieName}=; Max-Age=0; ${cookieAttrs}` });
    }
    if (path === `${P}/logout` && req.method === "GET") {
      const cookies: string[] = [];
      const csrf = ctx.csrfFor(req, { cookies });
      return send(res, 200, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Sign out</title><link rel="stylesheet" href="${P}/style.css"></head><body><main><h1>Sign out</h1><form method="post" action="${P}/logout"><input type="hidden" name="csrf" value="${csrf}"><button type="submit">Sign out</button></form></main></body></html>`, cookies.length ? { "set-cookie": cookies } : {});
    }
    if (path.startsWith(`${P}/enroll/`)) return handleEnroll(req, res, path.slice(`${P}/enroll/`.length));
    if (path === `${P}/auth`) {
      const s = session(req);
      if (s) {
        metrics.forward_auth_allowed!++;
        return void res.writeHead(200, { "remote-user": s.user, "cache-control": "no-store" }).end();
      }
      metrics.forward_auth_denied!++;
      if (config.forwardAuth === "status") return void res.writeHead(401, { "cache-control": "no-store" }).end();
      return void res.writeHead(302, { location: new URL(loginUrl(safeReturnUrl(originalUrl(req), returnPolicy)), config.publicUrl).toString(), "cache-control": "no-store" }).end();
    }
    const s = session(req);
    if (s && config.upstream) return proxy(req, res, s.user);
    if (s) return send(res, 404, messagePage("Signed in", `You are signed in as ${s.user}.`, P));
    if (req.method === "GET" || req.method === "HEAD") {
      return void res.writeHead(302, { location: loginUrl(safeReturnUrl(req.url ?? "/", returnPolicy)), "cache-control": "no-store" }).end();
    }
    return send(res, 401, messagePage("Sign in first", "This request needs a signed-in session.", P));
  }

  const tunnels = new Set<Duplex>();

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const s = session(req);
    if (!s || !config.upstream) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const upstream = config.upstream;
    const headers = toApp({ ...req.headers } as Record<string, string | string[]>, req, s.user); // Connection/Upgrade kept: they are the point here
    const up = httpRequest({ hostname: upstream.hostname, port: upstream.port || 80, method: req.method, path: req.url, headers });
    up.on("upgrade", (ures, usocket, uhead) => {
      const lines = [`HTTP/1.1 ${ures.statusCode} ${ures.statusMessage}`];
      for (let i = 0; i < ures.rawHeaders.length; i += 2) lines.push(`${ures.rawHeaders[i]}: ${ures.rawHeaders[i + 1]}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      if (uhead.length) socket.write(uhead);
      if (head.length) usocket.write(head);
      usocket.pipe(socket).pipe(usocket);
      tunnels.add(socket).add(usocket);
      const forget = () => {
        tunnels.delete(socket);
        tunnels.delete(usocket);
      };
      socket.on("close", forget);
      usocket.on("close", forget);
      usocket.on("error", () => socket.destroy());
      socket.on("error", () => usocket.destroy());
    });
    up.on("response", (ures) => {
      socket.end(`HTTP/1.1 ${ures.statusCode} ${ures.statusMessage}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    up.on("error", () => {
      metrics.upstream_errors!++;
      socket.end("HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    up.end();
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: Error) => {
      log({ event: "error", message: err.message });
      if (!res.headersSent) send(res, 500, messagePage("Error", "Something went wrong.", P));
      else res.destroy();
    });
  };
  const timeouts = {
    requestTimeout: 0, // long polling through the proxy (RStudio) must not be cut
    headersTimeout: config.headTimeoutMs, // slow-header clients (slowloris) are cut
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(config.headTimeoutMs / 2))),
  };
  const web: HttpServer = config.tls && !fastPath ? withTls(config.tls, (options) => createHttpsServer({ ...options, ...timeouts }, handler)) : createHttpServer(timeouts, handler);
  web.maxHeadersCount = 100;
  // With the fast path in front, this server never listens itself; 'listening' is what starts its
  // check of header timeouts on the connections it is given (Node's own tests start it this way).
  if (fastPath) web.emit("listening");
  web.on("upgrade", upgrade);
  let server: Server = web;
  if (fastPath && config.upstream) {
    const fast = createFastProxy({
      upstream: { host: config.upstream.hostname, port: Number(config.upstream.port || 80), hostHeader: config.upstream.host },
      pagesPrefix: P,
      cookieName: config.cookieName,
      forwardedProto: config.publicUrl.protocol.replace(":", ""),
      sessionUser: (cookies) => sessionFromToken(parseCookies(cookies.join("; ")).get(config.cookieName))?.user ?? null,
      handOver: (socket) => web.emit("connection", socket),
      upstreamError: () => void metrics.upstream_errors!++,
      idleMs: 5 * 60_000,
      headTimeoutMs: config.headTimeoutMs,
    });
    server = config.tls ? withTls(config.tls, (options) => createTlsServer(options, fast)) : createNetServer(fast);
  }
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => { // the TCP connection, also under TLS (a handshake that never ends too)
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  return {
    server,
    metrics,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive connections and WebSocket tunnels would keep close() waiting forever;
        // a client connection's end also ends its fast-path app connection.
        if (server !== web) web.close(() => undefined); // stops its timeout checks
        for (const s of sockets) s.destroy();
        for (const t of tunnels) t.destroy();
        agent.destroy();
      }),
  };
}
