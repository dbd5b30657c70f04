// The gateway as an application: what it receives, what it answers, and the services it is given.
// The app (gateway-app.ts) is a function from GatewayRequest to GatewayResponse with its clock,
// randomness, keys, sessions, decision service, upstream and log passed in, so it
// runs in-process in tests (like hono's app.request) without root or sockets. The node:http/TLS
// shell (gateway-server.ts) only translates between sockets and these types; the framing of
// everything sent to the app is decided by undici (upstream.ts), never by our code.

import type { Duplex } from "node:stream";
import type { Regulator } from "../../core/web/index.js";
import type { Clock, Random } from "../../ports/index.js";
import type { GatewayConfig } from "./gateway-config.js";
import type { Sessions } from "./sessions.js";
import type { DecisionService } from "../../ports/decision-service.js";

import type { HeaderList } from "../../core/web/headers.js";

export type { HeaderList } from "../../core/web/headers.js";

export interface GatewayRequest {
  readonly method: string;
  /** The request target exactly as received (the app refuses anything but origin-form). */
  readonly target: string;
  readonly headers: HeaderList;
  /** The TCP peer's address (the client, or a proxy in front). */
  readonly remoteAddress: string;
  /** The body as the server parsed it, or null when the request has none. */
  readonly body: AsyncIterable<Uint8Array> | null;
  /**
   * Calls `listener` (at most once) when the client's connection goes away before the answer is
   * complete. Registered only by the routes that need it (the proxy): no AbortSignal per request.
   */
  readonly onAbort?: (listener: () => void) => void;
}

/** Where a streamed body is written: the client's ServerResponse (a Writable fits too). */
export interface BodySink {
  /** false: full, wait for "drain" before writing more. */
  write(chunk: Uint8Array): boolean;
  end(): void;
  /** The body was cut short: the response must not look complete. */
  destroy(error?: Error): void;
  once(event: "drain", listener: () => void): unknown;
}

/**
 * A body that arrives while it is sent (the app's answer through the proxy): the shell writes it
 * straight into the client's response with pipeTo (no Readable per response); anything else may
 * read it as an AsyncIterable (in-process tests). Exactly one of pipeTo, cancel or iterating.
 */
export interface StreamedBody extends AsyncIterable<Uint8Array> {
  pipeTo(sink: BodySink): void;
  /** The body will not be read (HEAD, an error): let go of it. */
  cancel(): void;
}

export type ResponseBody = string | Uint8Array | AsyncIterable<Uint8Array> | StreamedBody | null;

export interface GatewayResponse {
  readonly status: number;
  readonly headers: HeaderList;
  readonly body: ResponseBody;
}

/** A request as it goes to the app: headers already rebuilt by the one function that does it. */
export interface UpstreamRequest {
  /** Whose request it is (null: none): app connections are never shared between users (upstream.ts). */
  readonly user: string | null;
  readonly method: string;
  readonly target: string;
  readonly headers: HeaderList;
  readonly body: AsyncIterable<Uint8Array> | null;
  /** See GatewayRequest.onAbort: the app request is aborted when the client goes away. */
  readonly onAbort?: (listener: () => void) => void;
}

/** An upgraded connection to the app: the app's 101 headers (lower-case) and the raw socket. */
export interface UpstreamUpgrade {
  readonly headers: HeaderList;
  readonly socket: Duplex;
}

export interface Upstream {
  /**
   * Send a request to the app; resolves at the app's status line (the body follows, usually a
   * StreamedBody), rejects when it cannot be reached (the app answers 502). Headers come back unfiltered.
   */
  forward(req: UpstreamRequest): Promise<GatewayResponse>;
  /** A WebSocket upgrade (the library sends Connection/Upgrade); rejects unless the app answers 101. */
  upgrade(req: { readonly user: string | null; readonly target: string; readonly headers: HeaderList; readonly onAbort?: (listener: () => void) => void }): Promise<UpstreamUpgrade>;
}

export interface GatewayLog {
  (event: Record<string, string | number | boolean>): void;
}

/** Everything the app is given; the shell builds the real ones, tests build fakes. */
export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: GatewayLog;
  readonly upstream: Upstream | null;
  readonly sessions: Sessions;
  readonly regulator: Regulator;
  /**
   * The login decision, what an account's secret is now (a fingerprint) and the enrollment writes:
   * `otpgate server` over decision_socket (the gateway then needs no access to home directories),
   * or localDecisions() in-process. Never blocks the event loop; throws DecisionServiceUnavailable
   * when it cannot answer.
   */
  readonly decisions: DecisionService;
  /** Wait (regulation delays, the refusal floor); default setTimeout. Tests pass one that moves a fake clock. */
  readonly sleep?: (ms: number) => Promise<void>;
}
