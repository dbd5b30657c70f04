// The app behind the gateway, reached through undici (maintained with Node). Every byte of framing
// sent to the app is decided by undici from what node:http parsed: the body goes as a stream only
// when the request has one, Content-Length only when node:http read a length-delimited body (undici
// then holds the stream to exactly that length), and undici itself refuses Transfer-Encoding,
// Connection, Upgrade, Keep-Alive and Expect given as headers. A GET/HEAD/DELETE/OPTIONS with a
// body is framed by undici (chunked or Content-Length) and its app connection is not reused.
//
// Timeouts: the app has UPSTREAM_HEADERS_MS to start answering; once it has, the body may pause
// for as long as it likes (bodyTimeout 0): RStudio long-polls and apps stream server-sent events.
// A client that goes away aborts its app request, so nothing waits on a dead client.

import { Pool, type Dispatcher } from "undici";
import type { HeaderList } from "../../core/web/headers.js";
import type { Upstream, UpstreamRequest } from "./gateway-types.js";

export const UPSTREAM_HEADERS_MS = 5 * 60_000;

export interface UpstreamOptions {
  /** The app's origin (http://host:port). */
  readonly origin: URL;
  /** Most open connections to the app. */
  readonly connections?: number;
  readonly headersTimeoutMs?: number;
}

export interface PoolUpstream extends Upstream {
  close(): Promise<void>;
}

/** Idempotent methods whose request can be sent again when an idle app connection was closed under it. */
const RETRY_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Errors that mean "the app connection was closed before it answered" (the request was not processed). */
const RETRY_CODES = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

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

export function createUpstream(options: UpstreamOptions): PoolUpstream {
  const pool = new Pool(options.origin.origin, {
    connections: options.connections ?? 128,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: options.headersTimeoutMs ?? UPSTREAM_HEADERS_MS,
    bodyTimeout: 0,
    strictContentLength: true,
  });

  async function send(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    return pool.request({
      method: req.method as Dispatcher.HttpMethod,
      path: req.target,
      headers: toUndiciHeaders(req.headers),
      body: req.body === null ? null : (req.body as AsyncIterable<Uint8Array> as unknown as Dispatcher.DispatchOptions["body"]),
      responseHeaders: "raw",
      ...(req.signal ? { signal: req.signal } : {}),
    });
  }

  return {
    async forward(req) {
      let res: Dispatcher.ResponseData;
      try {
        res = await send(req);
      } catch (err) {
        const code = (err as { code?: string }).code ?? "";
        // One more try when an idle keep-alive connection was closed by the app as we used it:
        // only without a body (nothing was consumed) and only for methods that may be repeated.
        if (req.body !== null || !RETRY_METHODS.has(req.method) || !RETRY_CODES.has(code) || req.signal?.aborted) throw err;
        res = await send(req);
      }
      const headers = rawHeaderList(res.headers as unknown as Buffer[]); // filtered by the app (to-app-headers.ts)
      return { status: res.statusCode, headers, body: req.method === "HEAD" ? (res.body.resume(), null) : res.body };
    },
    async upgrade(req) {
      const { headers, socket } = await pool.upgrade({
        path: req.target,
        method: "GET",
        protocol: "websocket",
        headers: toUndiciHeaders(req.headers),
        responseHeaders: "raw",
        ...(req.signal ? { signal: req.signal } : {}),
      } as Dispatcher.UpgradeOptions);
      return { headers: rawHeaderList(headers as unknown as Buffer[]), socket };
    },
    close: () => pool.destroy(),
  };
}
