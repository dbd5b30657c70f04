// The decision service as a client sees it (the unprivileged gateway): the DecisionService
// interface over HTTP/1.1 on the server's unix socket, with undici's public API (a small Pool of
// connections on the socket). Anything that keeps an answer from arriving - no socket, refused,
// a timeout, a non-200 status, a body that is not the contract's shape - is
// DecisionServiceUnavailable: the caller refuses and asks the user to try later; it never guesses.
// Before every request (so also before each reconnect) the socket must be root's (lstat: a socket,
// uid 0) in a directory only root can change (red team rt1, note e: otherwise a user who can write
// the socket's directory could answer "accepted" while the server is down).

import { lstatSync } from "node:fs";
import { dirname } from "node:path";
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
  /** Who must own the socket and its directories (default 0, root; tests only). */
  readonly trustedUid?: number;
}

/**
 * Why `socketPath` cannot be trusted to be the server's, or null: it must be a socket (not a
 * symlink) owned by `trustedUid`, and it and every directory above it must be owned by
 * `trustedUid` (or root) and not writable by group or others (sticky directories such as /tmp
 * excepted above the socket's own directory: others cannot rename or remove root's entries there).
 */
export function socketTrustProblem(socketPath: string, trustedUid = 0): string | null {
  const trusted = (uid: number) => uid === trustedUid || uid === 0;
  // The directories first: once they are root-only, only root can put a socket there.
  let dir = dirname(socketPath);
  for (let first = true; ; first = false) {
    let d;
    try {
      d = lstatSync(dir);
    } catch (err) {
      return `${dir} cannot be checked (${(err as NodeJS.ErrnoException).code ?? "error"})`;
    }
    if (!d.isDirectory()) return `${dir} is not a directory (a symbolic link?)`;
    if (!trusted(d.uid)) return `${dir} is owned by uid ${d.uid}, not by root`;
    const writableByOthers = (d.mode & 0o022) !== 0;
    if (writableByOthers && (first || (d.mode & 0o1000) === 0)) return `${dir} is writable by others than root (mode ${(d.mode & 0o7777).toString(8)})`;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  let st;
  try {
    st = lstatSync(socketPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No socket (the server is not running): the connection fails with the usual message.
    return code === "ENOENT" ? null : `${socketPath} cannot be checked (${code ?? "error"})`;
  }
  if (!st.isSocket()) return `${socketPath} is not a socket`;
  if (st.uid !== trustedUid) return `${socketPath} is owned by uid ${st.uid}, not by ${trustedUid === 0 ? "root" : `uid ${trustedUid}`}`;
  return null;
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
    const distrust = socketTrustProblem(this.options.socketPath, this.options.trustedUid ?? 0);
    if (distrust !== null) {
      throw new DecisionServiceUnavailable(
        `refusing to ask ${where}: ${distrust}; decision_socket must be otpgate server's socket, root's, in a directory only root can change (default /run/otpgate/server.sock)`,
      );
    }
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
      throw new DecisionServiceUnavailable(
        `cannot ask ${where}: ${code ?? (err as Error).name}${err instanceof Error && err.message ? ` (${err.message})` : ""}; is otpgate server running (systemctl status otpgate-server) and this user in its socket group?`,
      );
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
