// otpgate gateway's shell: a node:http (or https) server that translates sockets to the gateway
// app's requests and back (gateway-app.ts decides everything), and enforces the connection limits.
// node:http parses every request and frames every response; undici (upstream.ts) frames everything
// sent to the app. The only bytes written here by hand are a fixed refusal on a socket that is
// closed right after, and the 101 head to the client once the app's 101 was validated.

import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Server, Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { existsSync, readFileSync } from "node:fs";
import { Readable, type Duplex } from "node:stream";
import { Regulator } from "../../core/web/index.js";
import { addressKey, isTrustedProxy } from "../../core/web/client-address.js";
import { ConfigError } from "../../core/errors.js";
import { systemClock } from "../../platform/clock.js";
import { systemRandom } from "../../platform/random.js";
import { UserCache } from "../../platform/user-cache.js";
import { sessionFilesNotes } from "../../stores/gateway-revoke.js";
import { listInvites } from "../../stores/invite-store.js";
import { readPasswordFile } from "../../stores/password-file.js";
import { createGatewayApp, type GatewayApp } from "./gateway-app.js";
import type { DecisionService } from "../../ports/decision-service.js";
import { localDecisions } from "./local-decisions.js";
import { createUserDirectory } from "./user-directory.js";
import type { GatewayConfig } from "./gateway-config.js";
import type { GatewayLog, GatewayRequest, GatewayResponse, HeaderList, StreamedBody } from "./gateway-types.js";
import { createSecretReader } from "./secret-reader.js";
import { createSessionService, type Sessions, type SessionsFileOpener } from "./sessions.js";
import type { SharedState } from "./shared-state.js";
import type { AccountStore } from "../../ports/index.js";
import type { CachedAccount } from "../../platform/user-cache.js";
import { createUpstream, type PoolUpstream } from "./upstream.js";
import { describeFleetUrl } from "../../stores/pg/url.js";

export type { GatewayLog } from "./gateway-types.js";

class NotStarted extends Error {
  override name = "NotStarted";
  constructor() {
    super("the gateway has not started yet (start() reads its keys and sessions)");
  }
}

export interface Gateway {
  readonly server: Server;
  /** The app, the session service (tests issue sessions through it) and its metrics: after start(). */
  readonly app: GatewayApp;
  readonly sessions: Sessions;
  readonly metrics: GatewayApp["metrics"];
  /**
   * Build what reads the gateway's files (keys, sessions) and starts answering: called by
   * createGateway itself unless `deferStart` (the command binds the ports and drops to its user first).
   * Requests before it are answered 503. `shared`: the shared state of several instances (config
   * `store:`, opened by gateway-entry.ts openSharedState); it is closed with the gateway.
   */
  start(shared?: SharedState | null): void;
  /** The separate /metrics listener (config.metricsListen), listening once created. */
  readonly metricsServer: HttpServer | null;
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
export function preflight(config: GatewayConfig, parts: { readonly tls?: boolean; readonly files?: boolean } = {}): string[] {
  const notes: string[] = [];
  // The TLS files are read as root before the gateway drops to its user (they may be root's);
  // keys, sessions and the password file after it (they are that user's).
  if (parts.tls === false) return preflightFiles(config, notes);
  if (config.tls) {
    withTls(config.tls, (options) => createTlsServer(options)).close();
    notes.push(`TLS with ${config.tls.cert}`);
  }
  return parts.files === false ? notes : preflightFiles(config, notes);
}

function preflightFiles(config: GatewayConfig, notes: string[]): string[] {
  if (config.passwordFile) notes.push(`password factor on: ${readPasswordFile(config.passwordFile).size} password(s) in ${config.passwordFile}`);
  if (config.decisionSocket) notes.push(`decisions by otpgate server at ${config.decisionSocket}`);
  else if (existsSync(config.invitesDir)) notes.push(`${listInvites(config.invitesDir, systemClock.nowMs()).length} pending invitation(s)`);
  // keys_file and sessions_file: readable, private, well-formed (with store: revocations are in the database, not sessions_file)
  notes.push(...sessionFilesNotes(config, { sessionsFile: !config.store }));
  return notes;
}

const REASONS: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable" };

/** A fixed refusal on a raw socket, which is closed right after. */
export function refuseOnSocket(socket: Duplex, status: number): void {
  socket.end(`HTTP/1.1 ${status} ${REASONS[status] ?? "Refused"}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The 101 head to the client, written only after the app's 101 was validated (key, websocket). */
export function switchingProtocolsHead(accept: string, extra: HeaderList): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
}

/**
 * The request as the app sees it: header names lower case, in order, none dropped; a body only when
 * node:http parsed one. `onAbort` fires when `gone` closes before its answer is complete; only the
 * routes that need it register (one 'close' listener), so a forward-auth decision costs nothing here.
 */
function toGatewayRequest(req: IncomingMessage, gone: ServerResponse | Duplex): GatewayRequest {
  const headers: [string, string][] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return {
    method: req.method ?? "GET",
    target: req.url ?? "/",
    headers,
    remoteAddress: req.socket.remoteAddress ?? "-",
    body: hasBody(req) ? req : null,
    onAbort: (listener) => whenGone(gone, listener),
  };
}

function whenGone(gone: ServerResponse | Duplex, listener: () => void): void {
  // A ServerResponse closes after 'finish' too: only a close before it is a client going away.
  gone.once("close", () => (gone as { writableFinished?: boolean }).writableFinished === true || listener());
}

const isStreamed = (body: object): body is StreamedBody => typeof (body as Partial<StreamedBody>).pipeTo === "function";

/** node:http refuses Content-Length together with Transfer-Encoding, and any coding but a final chunked. */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = req.headers["content-length"];
  return length !== undefined && length !== "0";
}

function send(req: IncomingMessage, res: ServerResponse, out: GatewayResponse): void {
  const flat: string[] = [];
  let connection = false;
  for (const [n, v] of out.headers) {
    flat.push(n, v);
    if (n === "connection") connection = true;
  }
  // A body the app did not read to its end: the connection cannot carry another request.
  if (!connection && !req.complete && hasBody(req)) flat.push("connection", "close");
  res.writeHead(out.status, flat);
  const body = out.body;
  if (body === null || req.method === "HEAD") {
    res.end();
    if (body !== null && typeof body === "object" && !(body instanceof Uint8Array)) {
      if (isStreamed(body)) body.cancel();
      else (body as Readable).destroy?.();
    }
  } else if (typeof body === "string" || body instanceof Uint8Array) res.end(body);
  else if (isStreamed(body)) {
    // The app's body straight into the response: head and a small body leave in one write (node:http
    // corks the socket for the tick); an error on either side ends both, so a truncated app body is
    // never passed off as complete (the client's close aborts the app request through onAbort).
    body.pipeTo(res);
  } else {
    // pipe (not pipeline: that costs an AbortController and more listeners per response).
    const source = body instanceof Readable ? body : Readable.from(body);
    source.once("error", () => res.destroy());
    res.once("close", () => source.destroyed || source.readableEnded || source.destroy());
    source.pipe(res);
  }
}

/** send(), and what happens when the app's answer cannot be sent (a 500, or the response destroyed). */
function deliver(req: IncomingMessage, res: ServerResponse, out: GatewayResponse, log: GatewayLog): void {
  try {
    send(req, res, out);
  } catch (err) {
    failed(res, err as Error, log);
  }
}

function failed(res: ServerResponse, err: Error, log: GatewayLog): void {
  log({ event: "error", message: err.message });
  if (!res.headersSent) res.writeHead(500, ["content-type", "text/plain", "connection", "close"]).end("Something went wrong.\n");
  else res.destroy();
}

export interface GatewayOptions {
  /** Do not read any file or build the app yet: the caller calls start() (after binding and dropping to its user). */
  readonly deferStart?: boolean;
  /**
   * The decision service: otpgate server's client for decision_socket (gateway-entry.ts, the
   * composition root, builds it), or a test's. Default without decision_socket: in-process.
   */
  readonly decisions?: DecisionService & { close?(): Promise<void> };
  /** The stores, built by the composition root (gateway-entry.ts); never built here. */
  readonly stores: GatewayStores;
}

export interface GatewayStores {
  /** The state-file store of an account, opened as the account (in-process decisions only). */
  readonly stateFile: (account: CachedAccount) => AccountStore;
  /** sessions_file. */
  readonly sessionsFile: SessionsFileOpener;
}

/**
 * In-process decisions (no decision_socket): accounts from /etc/passwd (asynchronous, re-read on
 * change) and NSS (getent: at most 4 at once, 10 starts a second), cached, each lookup cut off at
 * user_lookup_timeout.
 */
function inProcessDecisions(config: GatewayConfig, stores: GatewayStores): DecisionService {
  if (config.decisionSocket) throw new ConfigError(`decision_socket ${config.decisionSocket}: this gateway was built without the client for otpgate server`);
  const users = new UserCache({ nowMs: () => systemClock.nowMs(), maxGetentPerSecond: 10 });
  const directory = createUserDirectory({ lookup: (name) => users.lookup(name), timeoutMs: config.userLookupTimeoutMs, storeOf: stores.stateFile });
  return localDecisions({ users: directory, stateFiles: config.stateFiles, invitesDir: config.invitesDir, clock: systemClock });
}

export function createGateway(config: GatewayConfig, log: GatewayLog, gatewayOptions: GatewayOptions): Gateway {
  const own0 = gatewayOptions;
  const stores = gatewayOptions.stores;
  let built: { app: GatewayApp; sessions: Sessions; closeDecisions(): Promise<void>; shared: SharedState | null } | null = null;
  const upstream: PoolUpstream | null = config.upstream ? createUpstream({ origin: config.upstream, connectionsPerPool: config.limits.appRequestsPerUser, maxPools: config.limits.appPools }) : null;
  /** Keys (rotations picked up), persisted revocations, and sessions bound to the user's secret (as the decision service reports it). */
  const start = (shared: SharedState | null = null): void => {
    if (built) return;
    if (config.store && !shared)
      throw new ConfigError(`store: ${describeFleetUrl(config.store)} is configured but the gateway was started without its shared state (gateway-entry.ts openSharedState)`);
    const given = own0.decisions;
    const own = given ? { decisions: given as DecisionService, close: () => given.close?.() ?? Promise.resolve() } : { decisions: inProcessDecisions(config, stores), close: () => Promise.resolve() };
    const readSecret = createSecretReader(own.decisions);
    const sessions = shared
      ? createSessionService({ config, clock: systemClock, random: systemRandom, log, readSecret, shared })
      : createSessionService({ config, clock: systemClock, random: systemRandom, log, readSecret, openSessionsFile: stores.sessionsFile });
    // Bans this instance decides are published; those of the others arrive through the shared state.
    const regulator = new Regulator(config.regulation, shared ? shared.publishBan : null);
    shared?.attachRegulator(regulator);
    const app = createGatewayApp({ config, clock: systemClock, random: systemRandom, log, upstream, sessions, regulator, decisions: own.decisions });
    built = { app, sessions, closeDecisions: own.close, shared };
  };
  const appOf = (): GatewayApp => {
    if (!built) throw new NotStarted();
    return built.app;
  };
  const { limits } = config;

  const tooManyHeaders = (req: IncomingMessage) => req.rawHeaders.length / 2 > limits.maxHeaders;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (tooManyHeaders(req)) {
      res.writeHead(431, ["content-type", "text/plain", "connection", "close"]).end("Too many header lines\n");
      return;
    }
    // The client going away before its answer is complete aborts what is on the way to the app
    // (GatewayRequest.onAbort). Most answers are immediate (forward-auth): no Promise for those.
    if (!built) {
      res.writeHead(503, ["content-type", "text/plain", "connection", "close", "retry-after", "1"]).end("Starting, try again in a second.\n");
      return;
    }
    const app = built.app;
    let out: GatewayResponse | Promise<GatewayResponse>;
    try {
      out = app.handle(toGatewayRequest(req, res));
    } catch (err) {
      return failed(res, err as Error, log);
    }
    if (out instanceof Promise)
      out.then(
        (o) => deliver(req, res, o, log),
        (err: Error) => failed(res, err, log),
      );
    else deliver(req, res, out, log);
  };

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    if (tooManyHeaders(req)) return refuseOnSocket(socket, 431);
    if (!built) return refuseOnSocket(socket, 503);
    const app = built.app;
    // An upgrade request carries no body; one that declares a body is refused by the app.
    const gw = toGatewayRequest(req, socket);
    app
      .upgrade(hasBody(req) ? { ...gw, body: (async function* () {})() } : gw)
      .then((d) => {
        if (d.kind === "refused") return refuseOnSocket(socket, d.status);
        const up = d.socket;
        if (socket.destroyed) return void up.destroy();
        up.on("error", () => socket.destroy());
        // Registered (and its session checked once more) before the client's 101: a session that
        // ended while the app's 101 was on its way gets no tunnel; both sockets are closed.
        if (!app.track(d.session, [socket, up])) return;
        socket.write(switchingProtocolsHead(d.accept, d.extra));
        if (head.length) up.write(head);
        up.pipe(socket).pipe(up);
      })
      .catch((err: Error) => {
        log({ event: "error", message: err.message });
        refuseOnSocket(socket, 502);
      });
  }

  const options = {
    requestTimeout: 0, // long polling through the proxy (RStudio) must not be cut
    headersTimeout: limits.headMs, // slow-header clients (slowloris) are cut
    keepAliveTimeout: limits.keepAliveMs,
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headMs / 4))),
    maxHeaderSize: 16 * 1024,
    insecureHTTPParser: false,
  };
  const web: HttpServer = config.tls ? withTls(config.tls, (tls) => createHttpsServer({ ...tls, ...options, handshakeTimeout: limits.firstByteMs }, handler)) : createHttpServer(options, handler);
  web.maxHeadersCount = 0; // nothing truncated: more header lines than limits.maxHeaders are refused (431)
  // Client connections from every address together (red team 2, F4: many addresses, IPv6 /64s, or
  // a trusted proxy): beyond it node:http closes a new connection at once, so the gateway never
  // reaches its file limit (the unit's LimitNOFILE=16384 holds limits.max_connections client
  // sockets plus at most limits.app_connections app sockets in use, with room to spare).
  web.maxConnections = limits.maxConnections;
  web.keepAliveTimeout = limits.keepAliveMs;
  web.on("upgrade", upgrade);
  web.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Bytes after a request with Connection: close are ignored: its response ends the connection.
    if (err.code === "HPE_CLOSED_CONNECTION") return;
    if (err.code === "HPE_HEADER_OVERFLOW") return refuseOnSocket(socket, 431);
    if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
    refuseOnSocket(socket, 400);
  });

  const sockets = new Set<Socket>();
  const perAddress = new Map<string, number>();
  // Red team RT-C F1: max_connections is one pool for all addresses, and a connection that sent one
  // request and then idles is kept for keep_alive_timeout, so a few addresses (each within
  // connections_per_address) could hold all of it and node:http would drop everyone else. Near the
  // cap, every keep-alive connection with no request in progress is closed (browsers reconnect).
  // node 20 counts as idle a connection whose request was answered; not one that has sent nothing
  // yet (first_byte_timeout), nor one in the middle of a request head (head_timeout) or with a
  // request in progress: those stay bounded by their timeouts and the per-address cap.
  const highWater = Math.max(1, Math.ceil(limits.maxConnections * 0.9));
  let lastSweep = -Infinity;
  let lastSweepLog = -Infinity;
  let sweepsUnlogged = 0;
  let sweepLater: NodeJS.Timeout | null = null;
  const sweepIdle = (): void => {
    const now = Date.now();
    if (sockets.size < highWater) return;
    if (now - lastSweep < 1000) {
      // Refilled within the second: sweep once the second is over, or node drops every newcomer
      // (a connection node drops never reaches "connection", so none would trigger it).
      sweepLater ??= setTimeout(
        () => {
          sweepLater = null;
          sweepIdle();
        },
        lastSweep + 1000 - now,
      ).unref();
      return;
    }
    lastSweep = now;
    web.closeIdleConnections();
    if (built) built.app.metrics.idle_connection_sweeps += 1;
    sweepsUnlogged += 1;
    if (now - lastSweepLog < 60_000) return;
    log({
      event: "connections_near_limit",
      open: sockets.size,
      max_connections: limits.maxConnections,
      idle_sweeps: sweepsUnlogged,
      message: "idle keep-alive connections closed to make room; if this repeats, put a firewall connlimit or a front proxy before the gateway",
    });
    lastSweepLog = now;
    sweepsUnlogged = 0;
  };
  web.on("drop", sweepIdle); // a connection refused at max_connections
  web.on("close", () => sweepLater && clearTimeout(sweepLater));
  web.on("connection", (s: Socket) => {
    // the TCP connection, also under TLS (a handshake that never ends is cut by handshakeTimeout)
    // Not for trusted proxies: their one address stands for every client behind them (a cap there let
    // anyone fill it, e.g. with logins held by the refusal floor); the proxy limits its clients.
    const key = addressKey(s.remoteAddress ?? "-");
    const open = perAddress.get(key) ?? 0;
    if (open >= limits.connectionsPerAddress && !isTrustedProxy(s.remoteAddress ?? "-", config.trustedProxies)) {
      s.destroy();
      return;
    }
    perAddress.set(key, open + 1);
    sockets.add(s);
    sweepIdle();
    s.once("close", () => {
      sockets.delete(s);
      const n = (perAddress.get(key) ?? 1) - 1;
      if (n <= 0) perAddress.delete(key);
      else perAddress.set(key, n);
    });
    if (!config.tls) {
      // A connection that sends nothing is not yet a request for node:http's timeouts: cut it here.
      const timer = setTimeout(() => {
        if (s.bytesRead === 0) s.destroy();
      }, limits.firstByteMs);
      timer.unref();
      s.once("close", () => clearTimeout(timer));
    }
  });
  if (config.tls) {
    web.on("secureConnection", (s: Socket) => {
      // After the handshake, the first request must start within the same time.
      let started = false;
      s.once("data", () => (started = true));
      const timer = setTimeout(() => {
        if (!started) s.destroy();
      }, limits.firstByteMs);
      timer.unref();
      s.once("close", () => clearTimeout(timer));
    });
  }

  let metricsServer: HttpServer | null = null;
  if (config.metricsListen) {
    const m = createHttpServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
      if (new URL(req.url ?? "/", "http://metrics.invalid").pathname !== `${config.pagesPrefix}/metrics`) return void res.writeHead(404, ["content-type", "text/plain"]).end("not found\n");
      if (!built) return void res.writeHead(503, ["content-type", "text/plain"]).end("starting\n");
      res.writeHead(200, ["content-type", "text/plain; version=0.0.4", "cache-control", "no-store"]).end(built.app.metricsText());
    });
    m.on("error", (err: Error) => log({ event: "error", message: `metrics_listen ${config.metricsListen!.host}:${config.metricsListen!.port}: ${err.message}` }));
    m.listen(config.metricsListen.port, config.metricsListen.host);
    metricsServer = m;
  }

  if (!own0.deferStart) start();
  return {
    server: web,
    get app() {
      return appOf();
    },
    get sessions() {
      return appOf() && built!.sessions;
    },
    get metrics() {
      return appOf().metrics;
    },
    start,
    metricsServer,
    close: () =>
      new Promise<void>((resolve) => {
        let pending = metricsServer ? 2 : 1;
        const done = () => void (--pending === 0 && resolve());
        web.close(done);
        metricsServer?.close(done);
        metricsServer?.closeAllConnections();
        // Idle keep-alive connections and WebSocket tunnels would keep close() waiting forever.
        for (const s of sockets) s.destroy();
        if (built) {
          built.app.tunnels.closeTunnels(() => true);
          built.sessions.close();
          void built.closeDecisions();
          void built.shared?.close();
        }
        void upstream?.close();
      }),
  };
}
