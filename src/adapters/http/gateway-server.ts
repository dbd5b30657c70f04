// otpgate gateway: a login page, sessions, a forward-auth endpoint (nginx auth_request, Traefik,
// Caddy) and a reverse proxy (with WebSocket upgrades) that lets a request through to the app only
// with a valid session. Codes are checked by the same service and state files as otpgate verify.

import { randomBytes } from "node:crypto";
import { Agent, createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { Regulator, checkSession, newSession, safeReturnUrl, type SessionData } from "../../core/web/index.js";
import { systemClock } from "../../platform/clock.js";
import { nodeMacFactory } from "../../platform/mac.js";
import { csrfToken, csrfValid, loadOrCreateKeys, seal, unseal, type Keys } from "../../platform/seal.js";
import { authenticateWith } from "../../services/authenticate.js";
import { userStore } from "../../services/resolve-account.js";
import type { GatewayConfig } from "./gateway-config.js";
import { STYLE, loginPage, messagePage } from "./pages.js";

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection"];
const FAILURE = "Wrong user name or code. Check the code in your app and try again.";
const MAX_FORM = 4096;
const USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

export interface GatewayLog {
  (event: Record<string, string | number | boolean>): void;
}

export interface Gateway {
  readonly server: Server;
  readonly metrics: Record<string, number>;
  close(): Promise<void>;
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function withoutHopByHop(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const drop = new Set(HOP_BY_HOP);
  for (const token of String(headers.connection ?? "").split(",")) if (token.trim()) drop.add(token.trim().toLowerCase());
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !drop.has(k)) out[k] = v;
  return out;
}

export function createGateway(config: GatewayConfig, log: GatewayLog): Gateway {
  const keys: Keys = loadOrCreateKeys(config.keysFile);
  const regulator = new Regulator(config.regulation);
  const lastSeen = new Map<string, number>();
  const revoked = new Map<string, number>();
  const metrics: Record<string, number> = { logins_ok: 0, logins_failed: 0, bans: 0, upstream_errors: 0, forward_auth_allowed: 0, forward_auth_denied: 0 };
  const secure = config.publicUrl.protocol === "https:";
  const P = config.pagesPrefix;
  const loginUrl = (rd: string) => `${P}/login?rd=${encodeURIComponent(rd)}`;
  const cookieAttrs = `Path=/; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
  const returnPolicy = { allowedHosts: config.allowedHosts, fallback: "/" };
  // Keep connections to the app open: a new TCP connection per request would halve throughput.
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });

  const clientIp = (req: IncomingMessage): string => {
    const remote = req.socket.remoteAddress ?? "-";
    const forwarded = String(req.headers["x-forwarded-for"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    return (remote === "127.0.0.1" || remote === "::1" || remote === "::ffff:127.0.0.1") && forwarded.length ? forwarded[forwarded.length - 1]! : remote;
  };

  const session = (req: IncomingMessage): SessionData | null => {
    const token = parseCookies(req.headers.cookie).get(config.cookieName);
    if (!token) return null;
    const data = unseal<SessionData>(token, keys.seal);
    if (!data || typeof data.sid !== "string" || typeof data.user !== "string" || revoked.has(data.sid)) return null;
    const now = systemClock.nowMs();
    const check = checkSession({ ...data, lastSeenAt: Math.max(data.lastSeenAt, lastSeen.get(data.sid) ?? 0) }, now, config.session);
    if (!check.valid) return null;
    if (lastSeen.size >= 50_000) prune(now);
    lastSeen.set(data.sid, now);
    return check.session;
  };

  /** Bounded memory: forget activity older than the idle timeout and revocations past expiry. */
  const prune = (now: number) => {
    for (const [sid, t] of lastSeen) if (now - t >= config.session.idleMs) lastSeen.delete(sid);
    for (const [sid, until] of revoked) if (until <= now) revoked.delete(sid);
  };

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}) => {
    res.writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      "x-frame-options": "DENY",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      ...(secure ? { "strict-transport-security": "max-age=31536000" } : {}),
      ...headers,
    });
    res.end(body);
  };

  /** A pre-session cookie for the double-submit CSRF token on our forms. */
  const csrfFor = (req: IncomingMessage, res: { cookies: string[] }): string => {
    let id = parseCookies(req.headers.cookie).get("otpgate_csrf");
    if (!id || !/^[A-Za-z0-9_-]{20,64}$/.test(id)) {
      id = randomBytes(18).toString("base64url");
      res.cookies.push(`otpgate_csrf=${id}; Path=${P}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`);
    }
    return csrfToken(id, keys.csrf);
  };

  const readForm = (req: IncomingMessage): Promise<URLSearchParams | null> =>
    new Promise((resolve) => {
      if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return resolve(null);
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_FORM) {
          resolve(null);
          req.destroy();
        } else chunks.push(c);
      });
      req.on("end", () => resolve(size > MAX_FORM ? null : new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
      req.on("error", () => resolve(null));
    });

  async function handleLogin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const cookies: string[] = [];
    if (Number(req.headers["content-length"] ?? 0) > MAX_FORM) return send(res, 413, messagePage("Too large", "The form was too large.", P));
    const form = await readForm(req);
    if (!form) return send(res, 413, messagePage("Not accepted", "The form could not be read.", P));
    const csrfId = parseCookies(req.headers.cookie).get("otpgate_csrf") ?? "";
    const rd = safeReturnUrl(form.get("rd"), returnPolicy);
    if (!csrfValid(csrfId, form.get("csrf") ?? undefined, keys.csrf)) {
      log({ event: "login", result: "rejected", reason: "csrf", ip: clientIp(req) });
      return send(res, 403, messagePage("Form expired", "The sign-in form expired. Please load it again.", P));
    }
    const user = form.get("user") ?? "";
    const code = form.get("code") ?? "";
    const ip = clientIp(req);
    const now = systemClock.nowMs();
    const keysFor = [`user:${user}`, `ip:${ip}`];
    const fail = (reason: string) => {
      metrics.logins_failed!++;
      const banned = regulator.fail(keysFor, now);
      metrics.bans! += banned.length;
      log({ event: "login", result: "rejected", reason, user: USER_NAME.test(user) ? user : "-", ip, ...(banned.length ? { banned: banned.join(" ") } : {}) });
      send(res, 401, loginPage({ prefix: P, csrf: csrfFor(req, { cookies }), returnTo: rd, user: USER_NAME.test(user) ? user : "", error: FAILURE }), cookies.length ? { "set-cookie": cookies } : {});
    };
    if (regulator.isBanned(keysFor, now)) return fail("banned");
    if (!USER_NAME.test(user) || !/^[0-9]{6,8}$/.test(code)) return fail("malformed");
    const found = userStore(user, { secret: config.stateFiles });
    if (!found) return fail("unknown-user");
    let outcome;
    try {
      ({ outcome } = await authenticateWith({ store: found.store, clock: systemClock, macFactory: nodeMacFactory }, code, { noSkewAdjust: true, noIncrementHotp: false, allowPrefix: false, recordSkewResetCode: true }, {}));
    } catch (err) {
      return fail(`error: ${(err as Error).message}`);
    }
    if (outcome.kind !== "accepted") return fail(outcome.kind === "rejected" ? outcome.reason : outcome.kind);
    regulator.succeed(`user:${user}`);
    metrics.logins_ok!++;
    const fresh = newSession(randomBytes(18).toString("base64url"), user, now);
    log({ event: "login", result: "accepted", via: outcome.via, user, ip });
    send(res, 303, "", { location: rd, "set-cookie": [`${config.cookieName}=${seal(fresh, keys.seal)}; ${cookieAttrs}`, ...cookies] });
  }

  function originalUrl(req: IncomingMessage): string {
    const h = req.headers;
    const uri = String(h["x-forwarded-uri"] ?? h["x-original-uri"] ?? req.url ?? "/");
    const host = String(h["x-forwarded-host"] ?? h.host ?? config.publicUrl.host);
    const proto = String(h["x-forwarded-proto"] ?? config.publicUrl.protocol.replace(":", ""));
    return `${proto}://${host}${uri.startsWith("/") ? uri : "/"}`;
  }

  function proxy(req: IncomingMessage, res: ServerResponse, user: string): void {
    const upstream = config.upstream!;
    const headers = withoutHopByHop(req.headers);
    delete headers["remote-user"];
    delete headers["x-forwarded-user"];
    const cookie = (req.headers.cookie ?? "").split(";").filter((c) => !c.trim().startsWith(`${config.cookieName}=`)).join(";").trim();
    if (cookie) headers.cookie = cookie;
    else delete headers.cookie;
    const forwardedFor = req.headers["x-forwarded-for"] ? `${req.headers["x-forwarded-for"]}, ${req.socket.remoteAddress}` : String(req.socket.remoteAddress);
    Object.assign(headers, { "remote-user": user, "x-forwarded-for": forwardedFor, "x-forwarded-proto": config.publicUrl.protocol.replace(":", ""), "x-forwarded-host": String(req.headers.host ?? config.publicUrl.host), host: upstream.host });
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
      const csrf = csrfFor(req, { cookies });
      return send(res, 200, loginPage({ prefix: P, csrf, returnTo: safeReturnUrl(url.searchParams.get("rd"), returnPolicy) }), cookies.length ? { "set-cookie": cookies } : {});
    }
    if (path === `${P}/login` && req.method === "POST") return handleLogin(req, res);
    if (path === `${P}/logout` && req.method === "POST") {
      const form = await readForm(req);
      const csrfId = parseCookies(req.headers.cookie).get("otpgate_csrf") ?? "";
      if (!form || !csrfValid(csrfId, form.get("csrf") ?? undefined, keys.csrf)) return send(res, 403, messagePage("Form expired", "Please load the page again.", P));
      const s = session(req);
      if (s) {
        if (revoked.size >= 50_000) prune(systemClock.nowMs());
        revoked.set(s.sid, s.createdAt + config.session.absoluteMs);
        lastSeen.delete(s.sid);
      }
      log({ event: "logout", user: s?.user ?? "-", ip: clientIp(req) });
      return send(res, 303, "", { location: `${P}/login`, "set-cookie": `${config.cookieName}=; Max-Age=0; ${cookieAttrs}` });
    }
    if (path === `${P}/logout` && req.method === "GET") {
      const cookies: string[] = [];
      const csrf = csrfFor(req, { cookies });
      return send(res, 200, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Sign out</title><link rel="stylesheet" href="${P}/style.css"></head><body><main><h1>Sign out</h1><form method="post" action="${P}/logout"><input type="hidden" name="csrf" value="${csrf}"><button type="submit">Sign out</button></form></main></body></html>`, cookies.length ? { "set-cookie": cookies } : {});
    }
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
    const headers = { ...req.headers } as Record<string, string | string[]>;
    delete headers["remote-user"];
    Object.assign(headers, { "remote-user": s.user, host: upstream.host, "x-forwarded-for": String(req.socket.remoteAddress) });
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
  const server = config.tls ? createHttpsServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, handler) : createHttpServer(handler);
  server.requestTimeout = 0; // long polling through the proxy (RStudio) must not be cut
  server.headersTimeout = 30_000;
  server.maxHeadersCount = 100;
  server.on("upgrade", upgrade);
  return {
    server,
    metrics,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive connections and WebSocket tunnels would keep close() waiting forever.
        server.closeAllConnections();
        for (const t of tunnels) t.destroy();
        agent.destroy();
      }),
  };
}
