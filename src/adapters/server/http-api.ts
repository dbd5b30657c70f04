// The decision service's HTTP/1.1 + JSON face (src/ports/decision-service.ts) for a unix socket:
// node:http with tight limits (a 16 KiB body, header and request timeouts, a bounded number of
// requests at a time), strict reading of every body, and errors as ServiceError. The socket's
// directory and mode decide who may ask (see unix-socket.ts); nothing here trusts the peer more.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { LogValue } from "../../core/log-fields.js";
import type { DecisionService, HealthReply, ServiceError } from "../../ports/decision-service.js";
import type { LogLevel } from "../../services/login.js";
import { ServiceBusy } from "./decisions.js";
import { BadRequest, readAccount, readDecide, readEnroll, readInvite } from "./wire.js";

export const MAX_BODY_BYTES = 16 * 1024;

export interface ApiOptions {
  readonly service: DecisionService;
  readonly version: string;
  log(level: LogLevel, kind: string, fields: Readonly<Record<string, LogValue>>): void;
  /** Requests whose body is complete handled at a time; beyond it 503 (default 256). */
  readonly maxInFlight?: number;
  /** Whole request, headers included (default 15 s; a decision may wait up to 5 s for a lock). */
  readonly requestTimeoutMs?: number;
  /** From the headers to the body's last byte; then the connection is destroyed (default 5 s). */
  readonly bodyTimeoutMs?: number;
  /** Open API connections; more are closed on accept, so RADIUS keeps its file descriptors (default 512). */
  readonly maxConnections?: number;
  /** A connection that sends nothing for this long is closed (default 10 s). */
  readonly idleTimeoutMs?: number;
}

export const DEFAULT_MAX_CONNECTIONS = 512;

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const ROUTES: Record<string, { read: (body: unknown) => unknown; call: (s: DecisionService, body: never) => Promise<unknown> }> = {
  "/v1/decide": { read: readDecide, call: (s, b) => s.decide(b) },
  "/v1/account": { read: readAccount, call: (s, b) => s.account(b) },
  "/v1/invite": { read: readInvite, call: (s, b) => s.invite(b) },
  "/v1/enroll": { read: readEnroll, call: (s, b) => s.enroll(b) },
};

// The body must be complete within `deadlineMs`: a client that sends its headers and then trickles
// (or stops) loses the connection, whatever node:http's own request timeout checks (red team 2, F4).
function readBody(req: IncomingMessage, deadlineMs: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) return Promise.reject(new HttpProblem(413, "too-large", `the body is larger than ${MAX_BODY_BYTES} bytes`));
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new HttpProblem(408, "slow-body", `the body did not arrive within ${deadlineMs} ms`));
      req.socket.destroy();
    }, deadlineMs);
    const settle = () => clearTimeout(timer);
    req.once("end", settle);
    req.once("error", settle);
    req.once("close", settle);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpProblem(413, "too-large", `the body is larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
    req.on("aborted", () => reject(new HttpProblem(400, "aborted", "the request was aborted")));
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  res.end(text);
}

export function createDecisionApi(options: ApiOptions): Server {
  const maxInFlight = options.maxInFlight ?? 256;
  let inFlight = 0;
  const health: HealthReply = { ok: true, version: options.version };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? "";
    if (path === "/v1/health") {
      if (req.method !== "GET") throw new HttpProblem(405, "method", "use GET for /v1/health");
      return send(res, 200, health);
    }
    const route = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
    if (!route) throw new HttpProblem(404, "not-found", `no such endpoint ${JSON.stringify(path.slice(0, 64))}; see src/ports/decision-service.ts`);
    if (req.method !== "POST") throw new HttpProblem(405, "method", `use POST for ${path}`);
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") throw new HttpProblem(415, "content-type", "send the body as application/json");
    const raw = await readBody(req, options.bodyTimeoutMs ?? 5_000);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      throw new HttpProblem(400, "bad-json", "the body is not JSON");
    }
    const input = route.read(body);
    // Only requests whose body is complete hold a slot: half-sent ones cannot make the API busy.
    if (inFlight >= maxInFlight) throw new HttpProblem(503, "busy", "too many requests at once; try again");
    inFlight++;
    try {
      send(res, 200, await route.call(options.service, input as never));
    } finally {
      inFlight--;
    }
  }

  const server = createServer(
    {
      requestTimeout: options.requestTimeoutMs ?? 15_000,
      headersTimeout: 5_000,
      keepAliveTimeout: 5_000,
      maxHeaderSize: 8 * 1024,
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        const problem =
          err instanceof HttpProblem
            ? err
            : err instanceof BadRequest
              ? new HttpProblem(400, "bad-request", err.message)
              : err instanceof ServiceBusy
                ? new HttpProblem(503, "busy", err.message)
                : new HttpProblem(500, "internal", err instanceof Error ? err.message : String(err));
        // Decisions and enrollments log their own line; only requests that never got there do here.
        options.log(problem.status >= 500 ? "err" : "notice", `api:${problem.status}`, {
          event: "api",
          path: (req.url ?? "").slice(0, 64),
          status: problem.status,
          reason: problem.code,
          problem: problem.message,
        });
        if (!res.headersSent && !res.destroyed) {
          res.shouldKeepAlive = problem.status < 500 && problem.status !== 413;
          send(res, problem.status, { error: { code: problem.code, message: problem.message } } satisfies ServiceError);
        }
      });
    },
  );
  // Idle connections cost the whole process file descriptors, which RADIUS needs to open state
  // files: a cap on open connections, an idle timeout, and node's header/request timeouts checked
  // every second rather than every 30 s (red team 2, F3).
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.timeout = options.idleTimeoutMs ?? 10_000;
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    else socket.destroy();
  });
  return server;
}
