// The decision service as a client sees it (the unprivileged gateway): the DecisionService
// interface over HTTP/1.1 on the server's unix socket, with undici's public API (a small Pool of
// connections on the socket). Anything that keeps an answer from arriving - no socket, refused,
// a timeout, a non-200 status, a body that is not the contract's shape - is
// DecisionServiceUnavailable: the caller refuses and asks the user to try later; it never guesses.

import { Pool } from "undici";
import type { AccountReply, AccountRequest, DecideReply, DecideRequest, DecisionService, EnrollReply, EnrollRequest, HealthReply, InviteReply, InviteRequest } from "../../ports/decision-service.js";
import { DecisionServiceUnavailable } from "../../ports/decision-service.js";

export interface DecisionClientOptions {
  /** The server's socket (default /run/otpgate/server.sock). */
  readonly socketPath: string;
  /** Whole request, connect to last byte (default 10 s: a decision may wait for a state file's lock). */
  readonly timeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Connections kept open to the server (default 8). */
  readonly connections?: number;
}

const MAX_ANSWER_BYTES = 64 * 1024;

type Check<T> = (v: Record<string, unknown>) => v is Record<string, unknown> & T;

const isString = (v: unknown): v is string => typeof v === "string";

const decideReply: Check<DecideReply> = (v): v is Record<string, unknown> & DecideReply =>
  (v.outcome === "accepted" && isString(v.via) && (v.warning === undefined || isString(v.warning))) || ((v.outcome === "rejected" || v.outcome === "error") && isString(v.reason));
const accountReply: Check<AccountReply> = (v): v is Record<string, unknown> & AccountReply =>
  v.account === "unknown" || v.account === "not-enrolled" || (v.account === "enrolled" && isString(v.fingerprint)) || (v.account === "unusable" && isString(v.problem));
const inviteReply: Check<InviteReply> = (v): v is Record<string, unknown> & InviteReply => {
  if (v.invite === null) return true;
  const i = v.invite as Record<string, unknown> | undefined;
  return typeof i === "object" && i !== null && isString(i.id) && isString(i.user) && typeof i.replace === "boolean" && typeof i.expiresAt === "number";
};
const enrollReply: Check<EnrollReply> = (v): v is Record<string, unknown> & EnrollReply =>
  (v.result === "enrolled" && isString(v.user) && typeof v.replaced === "boolean") || v.result === "gone" || v.result === "exists" || v.result === "unknown-user";
const healthReply: Check<HealthReply> = (v): v is Record<string, unknown> & HealthReply => v.ok === true && isString(v.version);

export class DecisionClient implements DecisionService {
  private readonly pool: Pool;
  private readonly timeoutMs: number;

  constructor(private readonly options: DecisionClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.pool = new Pool("http://localhost", {
      socketPath: options.socketPath,
      connections: options.connections ?? 8,
      connect: { timeout: options.connectTimeoutMs ?? 2_000 },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  decide(req: DecideRequest): Promise<DecideReply> {
    return this.call("POST", "/v1/decide", req, decideReply);
  }

  account(req: AccountRequest): Promise<AccountReply> {
    return this.call("POST", "/v1/account", req, accountReply);
  }

  invite(req: InviteRequest): Promise<InviteReply> {
    return this.call("POST", "/v1/invite", req, inviteReply);
  }

  enroll(req: EnrollRequest): Promise<EnrollReply> {
    return this.call("POST", "/v1/enroll", req, enrollReply);
  }

  health(): Promise<HealthReply> {
    return this.call("GET", "/v1/health", undefined, healthReply);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async call<T>(method: "GET" | "POST", path: string, body: unknown, check: Check<T>): Promise<T> {
    const where = `the decision service (${this.options.socketPath}${path})`;
    let status: number;
    let text: string;
    try {
      const res = await this.pool.request({
        method,
        path,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.statusCode;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_ANSWER_BYTES) {
          res.body.destroy();
          throw new Error(`an answer larger than ${MAX_ANSWER_BYTES} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      text = Buffer.concat(chunks).toString("utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new DecisionServiceUnavailable(`cannot ask ${where}: ${code ?? (err as Error).name}${err instanceof Error && err.message ? ` (${err.message})` : ""}; is otpgate server running (systemctl status otpgate-server) and this user in its socket group?`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new DecisionServiceUnavailable(`${where} answered ${status} with a body that is not JSON`);
    }
    if (status !== 200) {
      const e = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      throw new DecisionServiceUnavailable(`${where} answered ${status}${e && isString(e.code) ? ` ${e.code}` : ""}${e && isString(e.message) ? `: ${e.message}` : ""}`);
    }
    if (typeof value !== "object" || value === null || !check(value as Record<string, unknown>)) {
      throw new DecisionServiceUnavailable(`${where} answered with a body that is not the contract's shape (a different otpgate version?)`);
    }
    return value as T;
  }
}

/** A DecisionService on the server's socket. */
export function decisionClient(options: DecisionClientOptions): DecisionClient {
  return new DecisionClient(options);
}
