// The decision service as the gateway (and any other unprivileged front-end) sees it: the login
// decision, what the gateway needs to know about an account, and the enrollment writes of the
// invitation page. `otpgate server` implements it over HTTP/1.1 + JSON on a unix socket
// (/run/otpgate/server.sock, reachable only by root and one group); an in-process implementation
// (a process that may read the state files itself) implements the same interface.
//
// Wire contract (all requests POST with a JSON body, except GET /v1/health; answers are JSON):
//   POST /v1/decide  DecideRequest  -> 200 DecideReply
//   POST /v1/account AccountRequest -> 200 AccountReply
//   POST /v1/invite  InviteRequest  -> 200 InviteReply
//   POST /v1/enroll  EnrollRequest  -> 200 EnrollReply
//   GET  /v1/health                 -> 200 HealthReply
// A request the server cannot read (bad JSON, unknown fields, a name that fails the user-name
// rule) -> 400 ServiceError; anything else that goes wrong -> 500/503 ServiceError. Never a code,
// secret or password in an answer, an error message or a log line.

/** The one login decision (services/login.ts) as a request: the code is the only factor here. */
export interface DecideRequest {
  readonly user: string;
  /** What the user typed as the code (6-8 digits, or an 8-digit emergency code). */
  readonly code: string;
  /** Which front-end asks, for the log (e.g. "gateway"). */
  readonly service: string;
  /** The client's address as the front-end determined it, for the log and grace. */
  readonly clientAddress?: string | undefined;
  /**
   * "ignore": the state file's RATE_LIMIT is neither checked nor spent (the gateway regulates its
   * own clients, so strangers cannot use up the owner's RATE_LIMIT shared with SSH). Default "apply".
   */
  readonly rateLimit?: "apply" | "ignore" | undefined;
  /**
   * With rateLimit "ignore": the front-end vouches that the attempt carries a device the user
   * signed in with (the gateway's device cookie) and exempted it from its own per-user pacing. The
   * server then exempts it from its per-user pacing too, within one failure budget per user
   * (max_retries failures, then none for ban_time), so a front-end cannot buy more guesses than that.
   */
  readonly device?: boolean | undefined;
}

export type DecideReply = { readonly outcome: "accepted"; readonly via: string; readonly warning?: string | undefined } | { readonly outcome: "rejected" | "error"; readonly reason: string };

export interface AccountRequest {
  readonly user: string;
}

export type AccountReply =
  | { readonly account: "unknown" }
  | { readonly account: "not-enrolled" }
  /**
   * `fingerprint`: a keyed digest of the account's secret (the server's own key, stable across
   * restarts), so a front-end can tell when the secret changed without ever seeing it.
   */
  | { readonly account: "enrolled"; readonly fingerprint: string }
  /** The state file exists but a login would refuse it (owner, mode, content). */
  | { readonly account: "unusable"; readonly problem: string };

export interface InviteRequest {
  /** The invitation token from the link (never logged; the server logs its id). */
  readonly token: string;
}

export type InviteReply = { readonly invite: null } | { readonly invite: { readonly id: string; readonly user: string; readonly replace: boolean; readonly expiresAt: number } };

export interface EnrollRequest {
  readonly token: string;
  /** The new secret (base32) the user's app confirmed, and the emergency codes shown to them. */
  readonly secret: string;
  readonly scratchCodes: readonly number[];
}

export type EnrollReply =
  | { readonly result: "enrolled"; readonly user: string; readonly replaced: boolean }
  /** gone: no such invitation (used, expired); exists: enrolled meanwhile and not a replacement. */
  | { readonly result: "gone" | "exists" | "unknown-user" };

export interface HealthReply {
  readonly ok: true;
  readonly version: string;
}

export interface ServiceError {
  readonly error: { readonly code: string; readonly message: string };
}

export interface DecisionService {
  decide(req: DecideRequest): Promise<DecideReply>;
  account(req: AccountRequest): Promise<AccountReply>;
  invite(req: InviteRequest): Promise<InviteReply>;
  enroll(req: EnrollRequest): Promise<EnrollReply>;
}

/** The service could not be asked (socket missing, refused, timed out, bad answer): refuse, try later. */
export class DecisionServiceUnavailable extends Error {
  override name = "DecisionServiceUnavailable";
}
