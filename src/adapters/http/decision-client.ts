// The gateway's side of otpgate server's unix-socket API (src/ports/decision-service.ts): undici's
// public API (a Pool on the socket path), a deadline per request, answers checked before they are
// believed. Anything that is not a well-formed answer (no socket, refused, timed out, a 5xx, bad
// JSON) is DecisionServiceUnavailable: the gateway refuses the sign-in (503) or checks the session
// again later; it never treats "could not ask" as "no" or as "yes".

import { Pool } from "undici";
import { DecisionServiceUnavailable, type AccountReply, type DecideReply, type DecisionService, type EnrollReply, type InviteReply } from "../../ports/decision-service.js";

export interface DecisionClient extends DecisionService {
  close(): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === "string";

function decideReply(v: unknown): DecideReply | null {
  if (!isObject(v)) return null;
  if (v.outcome === "accepted" && isString(v.via)) return { outcome: "accepted", via: v.via, ...(isString(v.warning) ? { warning: v.warning } : {}) };
  if ((v.outcome === "rejected" || v.outcome === "error") && isString(v.reason)) return { outcome: v.outcome, reason: v.reason };
  return null;
}

function accountReply(v: unknown): AccountReply | null {
  if (!isObject(v)) return null;
  if (v.account === "unknown" || v.account === "not-enrolled") return { account: v.account };
  if (v.account === "enrolled" && isString(v.fingerprint) && v.fingerprint !== "") return { account: "enrolled", fingerprint: v.fingerprint };
  if (v.account === "unusable") return { account: "unusable", problem: isString(v.problem) ? v.problem : "" };
  return null;
}

function inviteReply(v: unknown): InviteReply | null {
  if (!isObject(v) || !("invite" in v)) return null;
  if (v.invite === null) return { invite: null };
  const i = v.invite;
  if (!isObject(i) || !isString(i.id) || !isString(i.user) || typeof i.replace !== "boolean" || typeof i.expiresAt !== "number") return null;
  return { invite: { id: i.id, user: i.user, replace: i.replace, expiresAt: i.expiresAt } };
}

function enrollReply(v: unknown): EnrollReply | null {
  if (!isObject(v)) return null;
  if (v.result === "enrolled" && isString(v.user) && typeof v.replaced === "boolean") return { result: "enrolled", user: v.user, replaced: v.replaced };
  if (v.result === "gone" || v.result === "exists" || v.result === "unknown-user") return { result: v.result };
  return null;
}

export function createDecisionClient(socketPath: string, options: { timeoutMs?: number } = {}): DecisionClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new Pool("http://localhost", { socketPath, connections: 16, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connectTimeout: Math.min(timeoutMs, 5_000) });

  async function post<T>(path: string, body: unknown, check: (v: unknown) => T | null): Promise<T> {
    let status: number;
    let parsed: unknown;
    try {
      const res = await pool.request({ method: "POST", path, headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
      status = res.statusCode;
      const text = await res.body.text();
      parsed = text === "" ? null : JSON.parse(text);
    } catch (err) {
      throw new DecisionServiceUnavailable(`otpgate server at ${socketPath} cannot be asked (${(err as NodeJS.ErrnoException).code ?? (err as Error).name}: ${(err as Error).message}); is it running?`);
    }
    if (status !== 200) {
      const message = isObject(parsed) && isObject(parsed.error) && isString(parsed.error.message) ? parsed.error.message : `status ${status}`;
      throw new DecisionServiceUnavailable(`otpgate server at ${socketPath} answered ${path} with ${status}: ${message}`);
    }
    const reply = check(parsed);
    if (reply === null) throw new DecisionServiceUnavailable(`otpgate server at ${socketPath} answered ${path} with something that is not its API (a different version?)`);
    return reply;
  }

  return {
    decide: (req) => post("/v1/decide", req, decideReply),
    account: (req) => post("/v1/account", req, accountReply),
    invite: (req) => post("/v1/invite", req, inviteReply),
    enroll: (req) => post("/v1/enroll", req, enrollReply),
    close: () => pool.close(),
  };
}
