// THE login decision for every front-end (`otpgate pam`, `otpgate rstudio-helper`, `otpgate
// verify`, the resident server's RADIUS and unix-socket decisions, the gateway through them): one
// function from what the front-end read ({user, token, service, rhost, sshd's auth info, factors})
// to {outcome, reason, via}, and one mapping from that to the log line. The front-ends only read
// input and report. Accounts and their stores come from stores/file-accounts.ts (fileAccounts /
// fileAccountsCached), whose stores act as the file's owner for each file section themselves.
//
// The rules, in order:
// 1. A key is required, before any state is read or any file touched, (a) with require_publickey
//    and (b) whenever sshd is the caller (the front-end saw an SSH connection in the PAM
//    environment) and the code is the only factor checked here, WHATEVER the options say: unless
//    sshd reports a completed publickey method (SSH_AUTH_INFO_0) the login is refused. So no sshd
//    setting (a password method still on before the reload, a Match block) and no misplaced PAM
//    line (a code-only RStudio line written into sshd's service) turns the code into a password.
//    With `password` the token carries the account's password as well, so the code is not alone
//    and the rule does not apply: that is a password login with a second factor.
// 2. The user name is checked before it reaches a lookup or a path, and must be an existing
//    account (the front-end's openAccount).
// 3. password + code: the token is split from the end by the account's digit count; the
//    password is checked FIRST, then the code is decided in full either way (the same work, so
//    timing does not tell which factor was wrong), and committed (DISALLOW_REUSE step, scratch
//    code, HOTP counter, RATE_LIMIT attempt) only when the password was right.
// 4. A refusal that proves nothing about the code changes NOTHING in the user's state: a wrong
//    password, an entry that cannot be a code (malformed), an unknown user, a missing key. The
//    state file (RATE_LIMIT above all) is shared by SSH, RStudio and RADIUS, so a client who knows
//    no secret must not be able to lock the owner out. Only a well-formed code, tried after every
//    other factor passed, counts for RATE_LIMIT. Password guessing is bounded instead by the
//    front-end's refusal floor (every refusal takes the same fixed time) and by the system's own
//    password lockout (pam_faillock, which pam_unix / rserver-pam apply).
// 5. nullok: a user who is not enrolled is let through only as far as this decision goes: in
//    password mode the WHOLE token must be the password. With the code as the only factor here,
//    it is let through (as pam_google_authenticator's nullok does) but the log says
//    warning=no-other-factor-checked unless sshd reported a completed publickey step (over SSH,
//    rule 1 already required one).

import { OtpgateError, ConfigError, LockTimeoutError, StateFileError, UsageError } from "../core/errors.js";
import type { LogValue } from "../core/log-fields.js";
import type { MacFactory } from "../core/otp.js";
import { graceHostProblem } from "../core/grace.js";
import { hasCompletedPublickey } from "../core/ssh-auth-info.js";
import { userNameProblem } from "../core/user-name.js";
import type { VerifyPolicy } from "../core/verify.js";
import { scratchEntries } from "../formats/ga-document.js";
import { SettingError, readOtpKind } from "../formats/ga-settings.js";
import type { AccountStore, Clock } from "../ports/index.js";
import { authenticateWith, type AuthenticateOptions, type AuthOutcome, type AuthResult } from "./authenticate.js";

export interface LoginFactors {
  /** The token is the account's password immediately followed by the code; both must be right. */
  readonly password: boolean;
  /** Refuse unless sshd reports a completed publickey method (SSH_AUTH_INFO_0). */
  readonly requirePublickey: boolean;
  /** Users without a state file are let through (see rule 5 above). */
  readonly nullok: boolean;
  readonly noSkewAdjust: boolean;
  readonly noIncrementHotp: boolean;
  /** Reference grace_period in seconds (0: off). Not used with `password`. */
  readonly gracePeriodSeconds: number;
  readonly allowReadonly: boolean;
  /** "ignore": RATE_LIMIT is neither checked nor spent (a front-end that regulates its own clients). */
  readonly rateLimit?: "apply" | "ignore" | undefined;
}

export interface LoginRequest {
  readonly user: string;
  readonly token: string;
  readonly service: string;
  readonly rhost?: string | undefined;
  /** SSH_AUTH_INFO_0 from the PAM environment (undefined outside sshd). */
  readonly sshAuthInfo?: string | undefined;
  /** sshd is the caller (the PAM environment shows an SSH connection): see rule 1. */
  readonly sshCaller?: boolean | undefined;
  readonly factors: LoginFactors;
  /** Every rejection is held back until this time (ms, the clock's scale): one floor for all. */
  readonly rejectNotBeforeMs?: number | undefined;
}

/** The account a login acts on. */
export interface LoginAccount {
  readonly store: AccountStore;
  /** Where its state lives, for the debug log. */
  readonly location: string;
  /**
   * Switch to the account's rights for the state-file section; returns the way back. Optional: a
   * store that switches for each of its own file sections (FileAccountStore with actAs) needs none.
   */
  enter?(): () => void;
}

export interface LoginDeps {
  /**
   * The account of a (validated) user name, or null when there is none; "unavailable" when the user
   * database cannot answer now (never taken as "no such user"). May throw ConfigError.
   */
  openAccount(user: string): LoginAccount | null | "unavailable" | Promise<LoginAccount | null | "unavailable">;
  /** Check the account's password (run with the caller's own rights, outside enter()). */
  checkPassword(user: string, password: string): Promise<boolean>;
  readonly clock: Clock;
  readonly macFactory: MacFactory;
  sleep(ms: number): Promise<void>;
}

export type LoginReason =
  | "publickey-required"
  | "invalid-user-name"
  | "unknown-user"
  | "not-enrolled"
  | "password"
  | "malformed"
  | "wrong"
  | "replay"
  | "rate-limited"
  | "skew-pending"
  | "no-otp"
  | "conflict"
  | "invalid-state"
  | "config"
  | "state-file"
  | "lock-timeout"
  | "usage"
  | "unavailable"
  | "internal";

export type LoginDecision =
  | { readonly outcome: "accepted"; readonly via: string; readonly warning?: string; readonly detail: Readonly<Record<string, LogValue>> }
  | { readonly outcome: "rejected" | "error"; readonly reason: LoginReason; readonly detail: Readonly<Record<string, LogValue>> };

const noop = (): void => {};

const NO_DETAIL: Readonly<Record<string, LogValue>> = {};

const rejected = (reason: LoginReason, detail: Readonly<Record<string, LogValue>> = NO_DETAIL): LoginDecision => ({ outcome: "rejected", reason, detail });

export async function decideLogin(deps: LoginDeps, req: LoginRequest): Promise<LoginDecision> {
  let decision: LoginDecision;
  try {
    decision = await decide(deps, req);
  } catch (err) {
    decision = { outcome: "error", reason: errorReason(err), detail: { problem: err instanceof Error ? err.message : String(err) } };
  }
  if (decision.outcome !== "accepted" && req.rejectNotBeforeMs !== undefined) {
    const wait = req.rejectNotBeforeMs - deps.clock.nowMs();
    if (wait > 0) await deps.sleep(wait);
  }
  return decision;
}

function errorReason(err: unknown): LoginReason {
  if (err instanceof ConfigError) return "config";
  if (err instanceof StateFileError) return "state-file";
  if (err instanceof LockTimeoutError) return "lock-timeout";
  if (err instanceof UsageError) return "usage";
  return err instanceof OtpgateError ? "config" : "internal";
}

async function decide(deps: LoginDeps, req: LoginRequest): Promise<LoginDecision> {
  const { factors } = req;
  const publickey = hasCompletedPublickey(req.sshAuthInfo);
  // 1. Before anything else: no state is read, no file touched.
  if (!publickey && (factors.requirePublickey || (req.sshCaller === true && !factors.password))) {
    return rejected("publickey-required", factors.requirePublickey ? NO_DETAIL : { caller: "ssh" });
  }
  // 2.
  const nameProblem = userNameProblem(req.user);
  if (nameProblem !== null) return rejected("invalid-user-name", { problem: `the user name ${nameProblem}` });
  const account = await deps.openAccount(req.user);
  if (account === "unavailable") return { outcome: "error", reason: "unavailable", detail: { problem: "the user database did not answer; try again" } };
  if (!account) return rejected("unknown-user");
  return factors.password ? passwordAndCode(deps, req, account) : codeOnly(deps, req, account, publickey);
}

function policyOf(factors: LoginFactors): VerifyPolicy {
  return {
    noSkewAdjust: factors.noSkewAdjust,
    noIncrementHotp: factors.noIncrementHotp,
    allowPrefix: false,
    recordSkewResetCode: true,
    malformedIsNoAttempt: true,
    rateLimit: factors.rateLimit ?? "apply",
  };
}

/**
 * rateLimit "ignore" (a front-end that regulates its own clients, e.g. the gateway's public form):
 * a refusal changes NOTHING in the state, not only RATE_LIMIT: no HOTP counter step for a wrong
 * code (a stranger would burn the owner's codes: red team rt1, F5), no pending skew reset. The
 * code is first decided without writing; only an accepted code is then decided again and
 * committed (under the lock, so a code used in between is refused there, still without a counter
 * step). "apply" is the reference behaviour in one pass.
 */
async function decideAndCommit(deps: LoginDeps, account: LoginAccount, code: string, factors: LoginFactors, options: AuthenticateOptions): Promise<AuthResult> {
  const authDeps = { store: account.store, clock: deps.clock, macFactory: deps.macFactory };
  const policy = policyOf(factors);
  if ((factors.rateLimit ?? "apply") !== "ignore" || options.decideOnly) return authenticateWith(authDeps, code, policy, options);
  const probe = await authenticateWith(authDeps, code, policy, { ...options, decideOnly: true });
  if (probe.outcome.kind !== "accepted") return probe;
  return authenticateWith(authDeps, code, { ...policy, noIncrementHotp: true }, options);
}

async function codeOnly(deps: LoginDeps, req: LoginRequest, account: LoginAccount, publickey: boolean): Promise<LoginDecision> {
  const { factors } = req;
  // A host that could break the state file's lines (red team rt1, F2) gets no grace: it is neither
  // matched nor recorded, and the log line says so (grace=not-recorded).
  const hostProblem = factors.gracePeriodSeconds > 0 && req.rhost !== undefined ? graceHostProblem(req.rhost) : null;
  const grace = factors.gracePeriodSeconds > 0 && req.rhost !== undefined && hostProblem === null ? { rhost: req.rhost, seconds: factors.gracePeriodSeconds } : undefined;
  const restore = account.enter?.() ?? noop;
  let result;
  try {
    result = await decideAndCommit(deps, account, req.token, factors, { grace, allowReadonly: factors.allowReadonly });
  } finally {
    restore();
  }
  const decision = withGraceNote(codeOnlyDecision(result, account, factors, publickey), hostProblem);
  return decision;
}

function withGraceNote(decision: LoginDecision, hostProblem: string | null): LoginDecision {
  if (hostProblem === null) return decision;
  return { ...decision, detail: { ...decision.detail, grace: "not-recorded", graceProblem: `PAM_RHOST ${hostProblem}` } } as LoginDecision;
}

function codeOnlyDecision(result: AuthResult, account: LoginAccount, factors: LoginFactors, publickey: boolean): LoginDecision {
  const outcome = result.outcome;
  if (outcome.kind === "not-enrolled" && factors.nullok) {
    // Nothing in this decision authenticated the user unless sshd proved a key. We still let them
    // through, as pam_google_authenticator's nullok does, because a module before us in the stack
    // may have (pam_unix in `auth required pam_unix.so` + `auth required ... otpgate pam nullok`);
    // the log says so plainly for the admin (and doctor) to see.
    return { outcome: "accepted", via: "nullok", ...(publickey ? {} : { warning: "no-other-factor-checked" }), detail: { file: account.location } };
  }
  const decision = fromOutcome(outcome, "");
  if (decision.outcome === "accepted" && result.unsaved !== undefined) {
    return { ...decision, warning: "allow-readonly-unsaved", detail: { ...decision.detail, problem: result.unsaved } };
  }
  return decision;
}

/** The state as it is now (under the lock, released at once), or null when not enrolled. */
async function peek(account: LoginAccount): Promise<string | null> {
  const restore = account.enter?.() ?? noop;
  try {
    const locked = await account.store.acquire();
    if (!locked) return null;
    const text = locked.text;
    await locked.release();
    return text;
  } finally {
    restore();
  }
}

/**
 * Where the code starts: the account's digit count from the end (6 unless the file says
 * OTPGATE_DIGITS). The one exception is an emergency code: when the last 8 characters are one of
 * the account's unused scratch codes, the split is at 8. Both are read from the state alone, so
 * the password is checked exactly once.
 */
export function splitAt(text: string, token: string): number {
  const kind = readOtpKind(text);
  const digits = kind instanceof SettingError ? 6 : kind.digits;
  if (digits !== 8 && token.length >= 8) {
    const tail = token.slice(-8);
    if (/^[1-9][0-9]{7}$/.test(tail) && scratchEntries(text).some((s) => s.code === Number(tail))) return 8;
  }
  return digits;
}

async function passwordAndCode(deps: LoginDeps, req: LoginRequest, account: LoginAccount): Promise<LoginDecision> {
  const { factors, token } = req;
  const text = await peek(account);
  if (text === null) {
    // Not enrolled: the whole token is the password. Checked even without nullok, so that an
    // unenrolled account is no quicker to refuse than a wrong password.
    const ok = token !== "" && (await deps.checkPassword(req.user, token));
    if (!factors.nullok) return rejected("not-enrolled");
    return ok ? { outcome: "accepted", via: "nullok+password", detail: { file: account.location } } : rejected("password");
  }
  const n = splitAt(text, token);
  const password = token.length > n ? token.slice(0, token.length - n) : "";
  const code = token.length > n ? token.slice(token.length - n) : token;
  const passwordOk = password !== "" && (await deps.checkPassword(req.user, password));
  // The code is always decided (same work); it is committed only with the right password, and a
  // wrong password writes nothing at all (rule 4).
  const restore = account.enter?.() ?? noop;
  let result;
  try {
    result = await decideAndCommit(deps, account, code, factors, { allowReadonly: factors.allowReadonly, decideOnly: !passwordOk });
  } finally {
    restore();
  }
  if (!passwordOk) return result.outcome.kind === "invalid-state" ? fromOutcome(result.outcome, "") : rejected("password");
  const decision = fromOutcome(result.outcome, "+password");
  if (decision.outcome === "accepted" && result.unsaved !== undefined) {
    return { ...decision, warning: "allow-readonly-unsaved", detail: { ...decision.detail, problem: result.unsaved } };
  }
  return decision;
}

function fromOutcome(outcome: AuthOutcome, viaSuffix: string): LoginDecision {
  switch (outcome.kind) {
    case "accepted":
      return { outcome: "accepted", via: outcome.via + viaSuffix, detail: acceptedDetail(outcome) };
    case "rejected":
      return rejected(outcome.reason);
    case "not-enrolled":
      return rejected("not-enrolled");
    case "invalid-state":
      return { outcome: "error", reason: "invalid-state", detail: { setting: outcome.setting, problem: outcome.problem } };
  }
}

/** What an accepted code tells (for the debug log and `otpgate verify`): never the code itself. */
function acceptedDetail(outcome: Extract<AuthOutcome, { kind: "accepted" }>): Readonly<Record<string, LogValue>> {
  switch (outcome.via) {
    case "totp":
      return { step: outcome.step, offset: outcome.offset };
    case "totp-skew-reset":
      return { step: outcome.step, skew: outcome.skew };
    case "hotp":
      return { counter: outcome.counter };
    case "scratch":
      return { remaining: outcome.remaining };
    case "grace":
      return NO_DETAIL;
  }
}

export type LogLevel = "info" | "notice" | "warning" | "err";

/**
 * The one mapping from a decision to its log fields and level. `debug` adds the detail (file,
 * step); problems and settings of errors are always there. Codes and passwords are never in it.
 */
export function logOf(decision: LoginDecision, debug: boolean): { level: LogLevel; fields: Record<string, LogValue> } {
  if (decision.outcome === "accepted") {
    const fields: Record<string, LogValue> = { result: "accepted", via: decision.via, warning: decision.warning };
    if (decision.warning === "allow-readonly-unsaved") fields.problem = decision.detail.problem;
    if (decision.detail.grace !== undefined) Object.assign(fields, { grace: decision.detail.grace, graceProblem: decision.detail.graceProblem });
    if (debug) Object.assign(fields, decision.detail);
    return { level: decision.warning ? "warning" : "info", fields };
  }
  const fields: Record<string, LogValue> = { result: decision.outcome, reason: decision.reason };
  if (decision.outcome === "error" || decision.reason === "invalid-user-name" || decision.reason === "publickey-required" || debug) Object.assign(fields, decision.detail);
  return { level: decision.outcome === "error" ? "err" : "notice", fields };
}

/** Exit status for pam_exec and rserver: 0 accepted, 1 refused, 2 broken configuration or state. */
export function exitCodeOf(decision: LoginDecision): 0 | 1 | 2 {
  return decision.outcome === "accepted" ? 0 : decision.outcome === "rejected" ? 1 : 2;
}
