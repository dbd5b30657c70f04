// The gateway as an application: a function from GatewayRequest to GatewayResponse (and the
// decision on WebSocket upgrades), with its clock, randomness, keys, sessions, regulation, upstream
// and log passed in. No sockets here: the node:http/TLS shell (gateway-server.ts) translates, and
// tests call it in-process (test/helpers/gateway-app.ts).

import { createHash } from "node:crypto";
import type { Duplex } from "node:stream";
import { cookieValue, headerValue, headerValues, safeReturnUrl, type SessionData } from "../../core/web/index.js";
import { gatewayCookies } from "./cookie-names.js";
import { createEnrollHandler } from "./enroll-handler.js";
import { forwardedWarner } from "./forwarded-warning.js";
import { UNKNOWN_CLIENT, unknownClientKey } from "../../core/web/client-address.js";
import { newMetrics, type GatewayMetrics, type HandlerContext } from "./gateway-context.js";
import type { GatewayDeps, GatewayRequest, GatewayResponse, HeaderList } from "./gateway-types.js";
import { createLoginHandler } from "./login-handler.js";
import { createPageKit } from "./page-kit.js";
import { STYLE, loginPage, messagePage, signOutPage } from "./pages.js";
import { appClientAddress, appHost, fromAppHeaders, toAppHeaders } from "./to-app-headers.js";
import { BodyIdleError, createPlaces, createUserPlaces, idleLimited, releasedWhenSent } from "./app-request-limits.js";
import { isLocalRequest } from "./local-request.js";
import { AppPoolsFull } from "./app-pools.js";
import { createTunnels, type Tunnels } from "./tunnels.js";

export type UpgradeDecision =
  { readonly kind: "refused"; readonly status: number } | { readonly kind: "tunnel"; readonly session: SessionData; readonly accept: string; readonly extra: HeaderList; readonly socket: Duplex };

export interface GatewayApp {
  /** The answer; a Promise only when it has to wait (a form body, the app, a session check's I/O): forward-auth answers at once. */
  handle(req: GatewayRequest): GatewayResponse | Promise<GatewayResponse>;
  /** Decide a request with an Upgrade header; on "tunnel", the app's socket is open and validated (101, websocket, accept). */
  upgrade(req: GatewayRequest): Promise<UpgradeDecision>;
  /**
   * Register an established tunnel (closed at its session's absolute expiry, by closeTunnels, or
   * when its session's re-check fails). Its session is checked first: false (and every socket
   * destroyed) when it ended in the meantime; the shell writes the client's 101 only on true.
   */
  track(session: SessionData, sockets: readonly Duplex[]): boolean;
  /** Re-check every tunnel's session now (also runs every session.recheck by itself). */
  recheckTunnels(): number;
  readonly tunnels: Tunnels;
  readonly metrics: GatewayMetrics;
  metricsText(): string;
}

/**
 * Methods whose body the gateway refuses (400) instead of forwarding. DELETE and OPTIONS keep
 * theirs (real APIs send them: Elasticsearch's delete-by-query, JSON DELETE payloads, CORS-less
 * OPTIONS with a description); every request with a body, whatever its method, goes with
 * `connection: close` (upstream.ts), so an app that ignores the body never reads it as a request.
 */
export const BODYLESS_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "TRACE"]);

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const WS_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/; // base64 of exactly 16 bytes

export { isLoopback } from "./local-request.js";

/** Wrap a body so that reading it fails when it is not complete within `ms` (slow bodies to our pages are cut). */
function bodyWithin(body: AsyncIterable<Uint8Array>, ms: number): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const it = body[Symbol.asyncIterator]();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("body too slow")), ms);
      });
      late.catch(() => undefined);
      try {
        for (;;) {
          const r = await Promise.race([it.next(), late]);
          if (r.done) return;
          yield r.value;
        }
      } finally {
        clearTimeout(timer);
        void it.return?.();
      }
    },
  };
}

export function createGatewayApp(deps: GatewayDeps): GatewayApp {
  const { config, clock, random, log, sessions, regulator, upstream } = deps;
  const P = config.pagesPrefix;
  const secure = config.publicUrl.protocol === "https:";
  const proto = secure ? "https" : "http";
  const returnPolicy = { allowedHosts: config.allowedHosts, fallback: "/" };
  const withPassword = config.passwordFile !== null;
  const metrics = newMetrics();
  const tunnels = createTunnels(config.session.recheckMs);
  const places = createUserPlaces(config.limits.appRequestsPerUser);
  // Tunnels per user (upgrades in flight included) and app connections in use, all users together.
  const tunnelPlaces = createUserPlaces(config.limits.tunnelsPerUser);
  const appConnections = createPlaces(config.limits.appConnections);
  // The cookie each tunnel's session came in (set by upgrade(), read by track()): its re-checks open it again.
  const tunnelCookies = new WeakMap<SessionData, string>();
  // Every cookie name the gateway reads (also the plain names behind https) is kept from the app.
  const names = gatewayCookies(config);
  const cookieNames = [...names.all];
  const kit = createPageKit({ secure, pagesPrefix: P, random, csrf: sessions.csrf, csrfCookie: { name: names.csrf, attributes: names.csrfAttributes } });
  // Sessions ended by revocation (logout, log out everywhere, a new secret, another process's
  // change to sessions_file) close their WebSocket tunnels at once.
  sessions.onEnded(() => tunnels.closeTunnels((s) => sessions.ended(s)));
  // New keys may have retired the key a tunnel's session was sealed with: every tunnel re-checks.
  sessions.onKeysChanged(() => tunnels.recheck());
  const warnForwarded = forwardedWarner(config.trustedProxies, log, () => clock.nowMs());
  // A client a trusted proxy did not name (RT-B F3) is counted under a key of its own per request.
  let unknownClients = 0;
  const clientAddress = (req: GatewayRequest) => {
    const client = appClientAddress(req.headers, req.remoteAddress, config.trustedProxies).client;
    return client === UNKNOWN_CLIENT ? unknownClientKey(++unknownClients) : client;
  };
  const ctx: HandlerContext = {
    config,
    clock,
    random,
    log,
    kit,
    sessions,
    regulator,
    decisions: deps.decisions,
    sleep: deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    metrics,
    clientAddress,
    sessionCookie: (value) => `${names.session}=${value ?? ""}; ${value === null ? "Max-Age=0; " : ""}${names.attributes}; SameSite=Lax`,
  };
  const handleLogin = createLoginHandler(ctx);
  const handleEnroll = createEnrollHandler(ctx);
  const loginUrl = (rd: string) => `${P}/login?rd=${encodeURIComponent(rd)}`;
  // The session cookie alone (cookieValue: the same answer as kit.cookies(req).get(), without the map).
  const session = (req: GatewayRequest): SessionData | null => sessions.open(cookieValue(headerValues(req.headers, "cookie"), names.session), clock.nowMs());
  const authPath = `${P}/auth`;
  /** Forward-auth answers have no body: Content-Length 0 instead of an empty chunked body. */
  const noBody = ["content-length", "0"] as const;
  const plain = (status: number, body: string, headers: HeaderList = []): GatewayResponse => ({
    status,
    headers: [["content-type", "text/plain; charset=utf-8"], ["cache-control", "no-store"], ...headers],
    body,
  });
  /** Our pages' forms must arrive within limits.bodyMs. */
  const pageRequest = (req: GatewayRequest): GatewayRequest => (req.body ? { ...req, body: bodyWithin(req.body, config.limits.bodyMs) } : req);

  function metricsText(): string {
    const gauges: [string, number][] = [
      ["tunnels_open", tunnels.size],
      ["app_connections_in_use", appConnections.size],
    ];
    return (
      Object.entries(metrics)
        .map(([k, v]) => `# TYPE otpgate_${k}_total counter\notpgate_${k}_total ${v}\n`)
        .join("") + gauges.map(([k, v]) => `# TYPE otpgate_${k} gauge\notpgate_${k} ${v}\n`).join("")
    );
  }

  /** A place for one of `user`'s requests (or tunnels) at the app and one among all users' app connections; null: 503. */
  function takePlace(perUser: typeof places, user: string): { release: () => void } | { busy: "user" | "all" } {
    const mine = perUser.take(user);
    if (mine === null) return { busy: "user" };
    const global = appConnections.take();
    if (global === null) {
      mine();
      return { busy: "all" };
    }
    return {
      release: () => {
        mine();
        global();
      },
    };
  }

  /** An app answer that failed after its head (red team 2, F5): the client's connection is dropped; say why. */
  const bodyFailed = (user: string) => (err: Error) => {
    metrics.upstream_errors++;
    log({ event: "upstream", result: "error", phase: "body", user, message: err.message });
  };

  function originalUrl(req: GatewayRequest): string {
    const h = req.headers;
    const uri = headerValue(h, "x-forwarded-uri") ?? headerValue(h, "x-original-uri") ?? req.target;
    const host = headerValue(h, "x-forwarded-host") ?? headerValue(h, "host") ?? config.publicUrl.host;
    const p = headerValue(h, "x-forwarded-proto") ?? proto;
    return `${p}://${host}${uri.startsWith("/") ? uri : "/"}`;
  }

  /** The headers the app receives for a signed-in request (the one function builds them). */
  function appHeaders(req: GatewayRequest, user: string): [string, string][] {
    const addr = appClientAddress(req.headers, req.remoteAddress, config.trustedProxies);
    const out = toAppHeaders(req.headers, {
      user,
      clientAddress: addr.client,
      forwardedFor: addr.forwardedFor,
      proto,
      host: appHost(req.headers, config.allowedHosts, config.publicUrl.host),
      upstreamHost: config.upstream!.host,
      cookieNames,
    }).filter(([n]) => n !== "content-length" && n !== "transfer-encoding");
    // Framing: a length only when the server read a length-delimited body (undici holds the stream
    // to it); a chunked body goes without one and undici chunks it. Nothing else decides framing.
    const length = headerValues(req.headers, "content-length");
    if (req.body !== null && length.length === 1 && headerValues(req.headers, "transfer-encoding").length === 0) out.push(["content-length", length[0]!]);
    return out;
  }

  async function proxy(req: GatewayRequest, user: string): Promise<GatewayResponse> {
    // A body on GET/HEAD/TRACE has no meaning (RFC 9110 9.3.1, 9.3.2, 9.3.8) and apps that ignore it
    // read it as the next request on their connection (CL.0): refused. See BODYLESS_METHODS.
    if (req.body !== null && BODYLESS_METHODS.has(req.method)) return plain(400, `A ${req.method} request cannot carry a body; send it without one.\n`, [["connection", "close"]]);
    const place = takePlace(places, user);
    if ("busy" in place) {
      log({ event: "upstream", result: place.busy === "user" ? "busy" : "app-connections-full", user });
      return place.busy === "user"
        ? plain(503, "Too many requests at once to the application; try again in a moment.\n", [["retry-after", "1"]])
        : plain(503, "The gateway has too many connections to the application open; try again in a moment.\n", [["retry-after", "1"]]);
    }
    const release = place.release;
    const body = req.body === null ? null : idleLimited(req.body, config.limits.appBodyIdleMs);
    try {
      const res = await upstream!.forward({ user, method: req.method, target: req.target, headers: appHeaders(req, user), body, ...(req.onAbort ? { onAbort: req.onAbort } : {}) });
      return { status: res.status, headers: fromAppHeaders(res.headers, cookieNames), body: releasedWhenSent(res.body, release, bodyFailed(user)) };
    } catch (err) {
      release();
      if (err instanceof BodyIdleError || (err as { cause?: unknown }).cause instanceof BodyIdleError) {
        log({ event: "upstream", result: "body-idle", user });
        return plain(408, "The request body stopped arriving; send it again.\n", [["connection", "close"]]);
      }
      if (err instanceof AppPoolsFull) {
        log({ event: "upstream", result: "pools-full", user });
        return plain(503, "The gateway is busy with too many users' requests to the application; try again in a moment.\n", [["retry-after", "1"]]);
      }
      metrics.upstream_errors++;
      log({ event: "upstream", result: "error", message: (err as Error).message });
      return kit.page(502, messagePage("Application unavailable", "The application behind the gateway did not answer.", P));
    }
  }

  /** GET /_otpgate/auth (nginx auth_request, Traefik forwardAuth, Caddy forward_auth): the decision alone. */
  function forwardAuth(req: GatewayRequest): GatewayResponse {
    const s = session(req);
    if (s) {
      metrics.forward_auth_allowed++;
      return { status: 200, headers: [["remote-user", s.user], ["cache-control", "no-store"], noBody], body: null };
    }
    metrics.forward_auth_denied++;
    if (config.forwardAuth === "status") return { status: 401, headers: [["cache-control", "no-store"], noBody], body: null };
    return {
      status: 302,
      headers: [["location", new URL(loginUrl(safeReturnUrl(originalUrl(req), returnPolicy)), config.publicUrl).toString()], ["cache-control", "no-store"], noBody],
      body: null,
    };
  }

  function handle(req: GatewayRequest): GatewayResponse | Promise<GatewayResponse> {
    warnForwarded(req);
    // Only origin-form targets (absolute-form and "*" would reach the app unchanged).
    if (!req.target.startsWith("/") || req.target.startsWith("//")) return plain(400, "Bad request target\n", [["connection", "close"]]);
    // The forward-auth target as proxies send it needs no URL parser (it would give the same path).
    let url: URL | null = null;
    if (req.target !== authPath) {
      try {
        url = new URL(req.target, "http://gateway.invalid");
      } catch {
        return plain(400, "Bad request target\n", [["connection", "close"]]);
      }
    }
    // A body is forwarded decoded from its chunks, so the only transfer coding accepted is chunked
    // alone (node:http already refuses it together with Content-Length, or not last).
    const te = headerValues(req.headers, "transfer-encoding");
    if (te.length > 0) {
      const codings = te.flatMap((v) => v.split(",")).map((t) => t.trim().toLowerCase());
      if (codings.length !== 1 || codings[0] !== "chunked") return plain(400, "Unsupported transfer coding\n", [["connection", "close"]]);
    }
    if (url === null) return forwardAuth(req);
    const path = url.pathname;
    if (path === "/healthz") return plain(200, "ok\n");
    if (path === `${P}/metrics`) {
      if (config.metricsListen !== null || !isLocalRequest(req.remoteAddress, req.headers, config.trustedProxies)) return kit.page(404, messagePage("Not found", "There is no such page.", P));
      return {
        status: 200,
        headers: [
          ["content-type", "text/plain; version=0.0.4"],
          ["cache-control", "no-store"],
        ],
        body: metricsText(),
      };
    }
    if (path === `${P}/style.css`)
      return {
        status: 200,
        headers: [
          ["content-type", "text/css"],
          ["cache-control", "max-age=3600"],
        ],
        body: STYLE,
      };
    if (path === `${P}/login` && req.method === "GET") {
      const cookies: string[] = [];
      const csrf = kit.csrfFor(req, cookies);
      return kit.page(
        200,
        loginPage({ prefix: P, csrf, returnTo: safeReturnUrl(url.searchParams.get("rd"), returnPolicy), password: withPassword }),
        cookies.map((c) => ["set-cookie", c] as const),
      );
    }
    if (path === `${P}/login` && req.method === "POST") return handleLogin(pageRequest(req));
    if (path === `${P}/logout` && req.method === "POST") return logout(req);
    if (path === `${P}/logout` && req.method === "GET") {
      const cookies: string[] = [];
      const csrf = kit.csrfFor(req, cookies);
      return kit.page(
        200,
        signOutPage({ prefix: P, csrf }),
        cookies.map((c) => ["set-cookie", c] as const),
      );
    }
    if (path.startsWith(`${P}/enroll/`)) return handleEnroll(pageRequest(req), path.slice(`${P}/enroll/`.length));
    if (path === authPath) return forwardAuth(req);
    const s = session(req);
    if (s && upstream && config.upstream) return proxy(req, s.user);
    if (s) return kit.page(404, messagePage("Signed in", `You are signed in as ${s.user}.`, P));
    if (req.method === "GET" || req.method === "HEAD")
      return {
        status: 302,
        headers: [
          ["location", loginUrl(safeReturnUrl(req.target, returnPolicy))],
          ["cache-control", "no-store"],
        ],
        body: null,
      };
    return kit.page(401, messagePage("Sign in first", "This request needs a signed-in session.", P));
  }

  async function logout(req: GatewayRequest): Promise<GatewayResponse> {
    const form = await kit.readForm(pageRequest(req));
    if (!form || !kit.csrfOk(req, form)) return kit.page(403, messagePage("Form expired", "Please load the page again.", P));
    const s = session(req);
    if (s) {
      sessions.revoke(s, clock.nowMs());
      tunnels.closeTunnels((t) => t.sid === s.sid);
    }
    log({ event: "logout", user: s?.user ?? "-", ip: clientAddress(req) });
    return kit.page(303, "", [
      ["location", `${P}/login`],
      ["set-cookie", ctx.sessionCookie(null)],
    ]);
  }

  async function upgrade(req: GatewayRequest): Promise<UpgradeDecision> {
    warnForwarded(req);
    const h = req.headers;
    const upgrades = headerValues(h, "upgrade");
    const connection = headerValues(h, "connection")
      .flatMap((v) => v.split(","))
      .map((t) => t.trim().toLowerCase());
    const key = headerValues(h, "sec-websocket-key");
    const version = headerValues(h, "sec-websocket-version");
    const websocket =
      req.method === "GET" &&
      req.body === null &&
      upgrades.length === 1 &&
      upgrades[0]!.trim().toLowerCase() === "websocket" &&
      connection.includes("upgrade") &&
      key.length === 1 &&
      WS_KEY.test(key[0]!) &&
      version.length === 1 &&
      version[0]!.trim() === "13" &&
      req.target.startsWith("/") &&
      !req.target.startsWith("//");
    if (!websocket) return { kind: "refused", status: 400 };
    const s = session(req);
    if (!s) return { kind: "refused", status: 401 };
    if (!upstream || !config.upstream) return { kind: "refused", status: 404 };
    const accept = createHash("sha1")
      .update(key[0]! + WS_GUID)
      .digest("base64");
    // A tunnel holds a place of its user's (limits.tunnels_per_user) and an app connection from
    // before the app is asked until its app socket closes (red team 2, F4): nothing reaches the app beyond.
    const place = takePlace(tunnelPlaces, s.user);
    if ("busy" in place) {
      log({ event: "upstream", result: place.busy === "user" ? "tunnels-busy" : "app-connections-full", user: s.user });
      return { kind: "refused", status: 503 };
    }
    let up;
    try {
      up = await upstream.upgrade({ user: s.user, target: req.target, headers: appHeaders(req, s.user), ...(req.onAbort ? { onAbort: req.onAbort } : {}) });
    } catch (err) {
      place.release();
      metrics.upstream_errors++;
      log({ event: "upstream", result: "error", message: (err as Error).message });
      return { kind: "refused", status: 502 };
    }
    // The app's answer must be a WebSocket 101 for this key; anything else closes its connection.
    const appUpgrade = headerValues(up.headers, "upgrade");
    const appAccept = headerValues(up.headers, "sec-websocket-accept");
    if (appUpgrade.length !== 1 || appUpgrade[0]!.trim().toLowerCase() !== "websocket" || appAccept.length !== 1 || appAccept[0]!.trim() !== accept) {
      up.socket.destroy();
      place.release();
      metrics.upstream_errors++;
      log({ event: "upstream", result: "error", message: "the app's answer to a WebSocket upgrade was not a valid 101" });
      return { kind: "refused", status: 502 };
    }
    up.socket.once("close", place.release);
    // The session may have ended while the app's 101 was on its way (logout, log out everywhere, a
    // new secret, a retired key: red team 2, F3): closeTunnels could not see this tunnel yet.
    const cookie = kit.cookies(req).get(names.session)!;
    if (!sessions.stillValid(cookie, clock.nowMs(), false)) {
      up.socket.destroy();
      place.release();
      log({ event: "upstream", result: "session-ended", user: s.user });
      return { kind: "refused", status: 401 };
    }
    const extra = up.headers.filter(([n, v]) => (n === "sec-websocket-protocol" || n === "sec-websocket-extensions") && /^[\x21-\x7e][\x20-\x7e]*$/.test(v));
    tunnelCookies.set(s, cookie);
    return { kind: "tunnel", session: s, accept, extra, socket: up.socket };
  }

  return {
    handle,
    upgrade,
    track: (s, sockets) => {
      const cookie = tunnelCookies.get(s);
      // A session that did not come through upgrade() has no cookie to re-check: it cannot stay.
      const check = (active: boolean) => cookie !== undefined && sessions.stillValid(cookie, clock.nowMs(), active);
      // Checked once more as the tunnel is registered: from here on, closeTunnels and re-checks see it.
      if (!check(false)) {
        for (const socket of sockets) socket.destroy();
        return false;
      }
      tunnels.add(s, sockets, sessions.expiresAt(s), clock.nowMs(), check);
      return true;
    },
    recheckTunnels: () => tunnels.recheck(),
    tunnels,
    metrics,
    metricsText,
  };
}
