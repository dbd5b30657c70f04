// The app behind the gateway, reached through undici (maintained with Node). Every byte of framing
// sent to the app is decided by undici from what node:http parsed: the body goes as a stream only
// when the request has one, Content-Length only when node:http read a length-delimited body (undici
// then holds the stream to exactly that length), and undici itself refuses Transfer-Encoding,
// Connection, Upgrade, Keep-Alive and Expect given as headers. Every request with a body (POST and
// PUT as much as DELETE or an extension method; GET/HEAD/TRACE bodies are refused by the app) goes
// with connection: close, and its app connection is never used again: an app that answers without
// reading the body (Python's http.server do_POST not reading rfile, an early 401/404) can never read
// it as its next request (red team 1 F2, red team 2 F1: CL.0). nginx's default upstream (HTTP/1.0,
// no keepalive) never reuses a connection either; the cost is one loopback connect per upload.
//
// Speed: a request goes out with pool.dispatch and one handler object (undici's public Dispatcher
// handler API: onRequestStart/onResponseStart/onResponseData/onResponseEnd/onResponseError). The
// app's body is not turned into a Readable: the handler writes each chunk straight into the sink
// the shell gives it (the client's ServerResponse), pauses undici when the sink is full and resumes
// it on 'drain'. Nothing but undici's own framing and parsing is between the two sockets.
//
// Connections: each user has a pool of app connections of their own (app-pools.ts, red team 1, F9):
// an app connection, WebSocket upgrades included, never carries two users' requests, so stray bytes
// an app sends after one user's answer can never be read as another user's answer. At most
// limits.app_pools (APP_POOLS by default) users' pools are kept (least recently used replaced; 503 when all have requests in
// flight), each with at most `connectionsPerPool` connections (limits.app_requests_per_user: a
// user's requests never queue behind each other); a pool idle for IDLE_POOL_MS is closed.
//
// Timeouts: the app has UPSTREAM_HEADERS_MS to start answering; once it has, the body may pause
// for as long as it likes (bodyTimeout 0): RStudio long-polls and apps stream server-sent events.
// A client that goes away aborts its app request (through the dispatch controller), so nothing
// waits on a dead client.

import { Pool, type Dispatcher } from "undici";
import type { IncomingHttpHeaders } from "node:http";
import type { HeaderList } from "../../core/web/headers.js";
import { createUserPools } from "./app-pools.js";
import { ClientGone } from "./client-gone.js";
import type { BodySink, GatewayResponse, StreamedBody, Upstream, UpstreamRequest } from "./gateway-types.js";

export const UPSTREAM_HEADERS_MS = 5 * 60_000;
/** Users' pools kept at once by default (limits.app_pools; each holds no connection once idle for the keep-alive timeout). */
export const APP_POOLS = 1024;
/** A user's pool with nothing in flight for this long is closed. */
export const IDLE_POOL_MS = 60_000;

export interface UpstreamOptions {
  /** The app's origin (http://host:port). */
  readonly origin: URL;
  /** Most open connections to the app per user (limits.app_requests_per_user). */
  readonly connectionsPerPool?: number;
  /** Most users' pools kept (limits.app_pools; default APP_POOLS). */
  readonly maxPools?: number;
  readonly idlePoolMs?: number;
  readonly headersTimeoutMs?: number;
}

export interface PoolUpstream extends Upstream {
  close(): Promise<void>;
  /** Users' pools kept now (tests, metrics). */
  readonly pools: number;
}

/** Idempotent methods whose request can be sent again when the app connection closed before any answer. */
const RETRY_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Errors that mean "the app connection was closed under the request" (see answerArrived for the exceptions). */
const RETRY_CODES = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);
/** undici's SocketError messages for an answer that did arrive but broke its rules (client-h1.js). */
const ANSWERED = new Set(["bad response", "bad upgrade"]);

/**
 * Whether a failed request is one the app may not have received: a connection error (a kept
 * connection the app closed as we used it), not an answer undici refused. "bad response" (a
 * spontaneous 100 Continue, a response with nothing running) and "bad upgrade" (a 101 to a plain
 * request) mean the app received and ran the request: sending it again would run it twice (red
 * team 1, F8). A head cut short ("other side closed" after some bytes) cannot be told from a kept
 * connection closed under the request by undici's public error, and is still sent once more.
 */
export function mayRetry(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code !== "string" || !RETRY_CODES.has(e.code)) return false;
  return !(e.code === "UND_ERR_SOCKET" && typeof e.message === "string" && ANSWERED.has(e.message));
}

/** What the app may send before the shell has attached the client's response: beyond it, undici is paused. */
const EARLY_BYTES = 64 * 1024;

function toUndiciHeaders(headers: HeaderList): string[] {
  const flat: string[] = [];
  for (const [n, v] of headers) flat.push(n, v);
  return flat;
}

/** undici's raw response headers (name, value, name, value, ... as Buffers) as a lower-case list. */
export function rawHeaderList(raw: readonly (Buffer | string)[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toString("latin1").toLowerCase(), raw[i + 1]!.toString("latin1")]);
  return out;
}

/** undici's parsed response headers (names lower case; a repeated header as an array) as a list. */
function headerList(headers: IncomingHttpHeaders): [string, string][] {
  const out: [string, string][] = [];
  for (const name in headers) {
    const v = headers[name];
    if (typeof v === "string") out.push([name, v]);
    else if (v !== undefined) for (const one of v) out.push([name, one]);
  }
  return out;
}

/**
 * One request to the app and, once the app has answered, its body on the way to the client. The
 * promise settles at the app's final status line: resolved with the response (this object as its
 * body), or rejected with the error that kept the app from answering.
 */
class Forwarding implements Dispatcher.DispatchHandler, StreamedBody {
  private controller: Dispatcher.DispatchController | null = null;
  private answered = false;
  private sink: BodySink | null = null;
  /** Chunks that arrived before the sink (usually the whole small body, in the same read as the head). */
  private early: Buffer[] | null = null;
  private earlyBytes = 0;
  private ended = false;
  private failure: Error | null = null;
  private gone = false;
  private drainBound: (() => void) | null = null;

  constructor(
    private readonly head: boolean,
    private readonly resolve: (res: GatewayResponse) => void,
    private readonly reject: (err: Error) => void,
    /** The request is over at the app (answered to its end or failed): its pool may be closed. */
    private readonly settled: () => void,
  ) {}

  /** The client went away: abort the app request (now, or as soon as undici starts it). */
  abort(): void {
    if (this.gone || this.ended || this.failure) return;
    this.gone = true;
    this.controller?.abort(new ClientGone());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.gone) controller.abort(new ClientGone());
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx interim answers are not passed on (undici handles 100-continue)
    this.answered = true;
    this.resolve({ status: statusCode, headers: headerList(headers), body: this.head ? null : this });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.head) return;
    const sink = this.sink;
    if (sink === null) {
      (this.early ??= []).push(chunk);
      this.earlyBytes += chunk.length;
      if (this.earlyBytes >= EARLY_BYTES) controller.pause();
    } else if (!sink.write(chunk)) {
      controller.pause();
      sink.once("drain", (this.drainBound ??= () => this.controller?.resume()));
    }
  }

  onResponseEnd(): void {
    this.ended = true;
    this.settled();
    if (!this.answered) return this.reject(new Error("the app ended the request without a final answer"));
    this.sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.settled();
    if (!this.answered) return this.reject(error);
    this.failure = error;
    // A body cut short is never passed off as complete: the client's response is destroyed.
    this.sink?.destroy(error);
  }

  pipeTo(sink: BodySink): void {
    if (this.sink) throw new Error("the app's body is already being sent");
    this.sink = sink;
    const early = this.early;
    this.early = null;
    let full = false;
    if (early) for (const c of early) full = !sink.write(c);
    if (this.failure) return void sink.destroy(this.failure);
    if (this.ended) return void sink.end();
    if (early && this.earlyBytes >= EARLY_BYTES) {
      if (full) sink.once("drain", (this.drainBound ??= () => this.controller?.resume()));
      else this.controller?.resume();
    }
  }

  cancel(): void {
    this.early = null;
    if (!this.ended && !this.failure) this.controller?.abort(new ClientGone());
  }

  /** For in-process use (tests): the body as chunks, through a small queueing sink. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const queue: Uint8Array[] = [];
    let done = false;
    let error: Error | null = null;
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    this.pipeTo({
      write: (c) => (queue.push(c), notify(), true),
      end: () => ((done = true), notify()),
      destroy: (e) => ((error = e ?? new Error("destroyed")), notify()),
      once: () => undefined,
    });
    try {
      for (;;) {
        if (queue.length) yield queue.shift()!;
        else if (error) throw error;
        else if (done) return;
        else await new Promise<void>((r) => (wake = r));
      }
    } finally {
      if (!done) this.cancel();
    }
  }
}

export function createUpstream(options: UpstreamOptions): PoolUpstream {
  const origin = options.origin.origin;
  const pools = createUserPools<Pool>({
    maxPools: options.maxPools ?? APP_POOLS,
    idleMs: options.idlePoolMs ?? IDLE_POOL_MS,
    create: () =>
      new Pool(origin, {
        connections: options.connectionsPerPool ?? 64,
        pipelining: 1,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        headersTimeout: options.headersTimeoutMs ?? UPSTREAM_HEADERS_MS,
        bodyTimeout: 0,
        strictContentLength: true,
      }),
    // Only pools with nothing in flight are closed before shutdown (an upgraded socket is detached).
    close: (pool) => pool.destroy(),
  });

  function send(req: UpstreamRequest, headers: string[]): Promise<GatewayResponse> {
    const lease = pools.acquire(req.user);
    return new Promise<GatewayResponse>((resolve, reject) => {
      const f = new Forwarding(req.method === "HEAD", resolve, reject, lease.release);
      req.onAbort?.(() => f.abort());
      try {
        lease.pool.dispatch(
          {
            origin,
            method: req.method as Dispatcher.HttpMethod,
            path: req.target,
            headers,
            body: req.body === null ? null : (req.body as AsyncIterable<Uint8Array> as unknown as Dispatcher.DispatchOptions["body"]),
            // A body: connection: close, never reused (CL.0 on an app that does not read it; see the top).
            ...(req.body !== null ? { reset: true } : {}),
          },
          f,
        );
      } catch (err) {
        // undici reports its errors to the handler; anything thrown here never reached the app.
        lease.release();
        reject(err as Error);
      }
    });
  }

  return {
    async forward(req) {
      const headers = toUndiciHeaders(req.headers);
      try {
        return await send(req, headers);
      } catch (err) {
        // One more try when an idle keep-alive connection was closed by the app as we used it (never
        // after an answer undici refused: mayRetry), only without a body (nothing was consumed) and
        // only for methods that may be repeated.
        if (req.body !== null || !RETRY_METHODS.has(req.method) || !mayRetry(err) || err instanceof ClientGone) throw err;
        return send(req, headers);
      }
    },
    async upgrade(req) {
      let abort: AbortController | undefined;
      if (req.onAbort) {
        const a = (abort = new AbortController());
        req.onAbort(() => a.abort());
      }
      // The user's own pool: the connection upgraded has carried no other user's request. Once
      // upgraded, undici detaches the socket from its pool (closing the pool does not touch it).
      const lease = pools.acquire(req.user);
      try {
        const { headers, socket } = await lease.pool.upgrade({
          path: req.target,
          method: "GET",
          protocol: "websocket",
          headers: toUndiciHeaders(req.headers),
          responseHeaders: "raw",
          ...(abort ? { signal: abort.signal } : {}),
        } as Dispatcher.UpgradeOptions);
        return { headers: rawHeaderList(headers as unknown as Buffer[]), socket };
      } finally {
        lease.release();
      }
    },
    get pools() {
      return pools.size;
    },
    close: () => pools.close(),
  };
}
