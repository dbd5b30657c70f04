// The decision service in this process (otpgate server, running as root): the one login decision,
// what a front-end may know about an account, and the enrollment writes of an invitation. Every
// state file is read and written with its owner's ids (the store, and asUser for a new file), never
// as root. One JSON line per call goes to the log; never a code, secret or token (an invitation
// appears as the first 12 hex digits of its id).

import { createHmac } from "node:crypto";
import { lstatSync } from "node:fs";
import { enrollmentText } from "../../core/enroll.js";
import { INVITE_ENROLL_SETTINGS } from "../../core/enroll-defaults.js";
import { OtpgateError } from "../../core/errors.js";
import { decodeGaSecret } from "../../core/base32.js";
import type { LogValue } from "../../core/log-fields.js";
import type { MacFactory } from "../../core/otp.js";
import { userNameProblem } from "../../core/user-name.js";
import { attemptAddress, DEFAULT_REGULATION, Regulator, type RegulatorPolicy, type Settlement } from "../../core/web/regulation.js";
import { secretLine } from "../../formats/ga-document.js";
import { asUser, type Identity } from "../../platform/privileges.js";
import type { AccountReply, AccountRequest, DecideReply, DecideRequest, DecisionService, EnrollReply, EnrollRequest, InviteReply, InviteRequest } from "../../ports/decision-service.js";
import type { AccountStore, Clock } from "../../ports/index.js";
import { logOf, type LoginFactors, type LogLevel } from "../../services/login.js";
import { decideResident } from "../../services/resident-decision.js";
import { writeNewStateFile } from "../../stores/file-store.js";
import { claimInvite, findInvite } from "../../stores/invite-store.js";
import { checkInvitesDir } from "./invites-dir.js";
import { BadRequest } from "./wire.js";

/** What the service needs of an account: its ids (for acting as it) and its name. */
export interface ServiceAccount extends Identity {
  readonly name: string;
}

/** A state file store that can also be peeked at (the file store: as the owner, without the lock). */
export interface PeekableStore extends AccountStore {
  readonly path: string;
  peek(): string | null;
}

export interface LocalServiceDeps<A extends ServiceAccount> {
  lookup(name: string): Promise<A | null | "busy">;
  storeFor(account: A): PeekableStore;
  readonly clock: Clock;
  readonly macFactory: MacFactory;
  /** The server's factors (nullok, skew...); the front-end chooses only the rate limit. */
  readonly factors: Omit<LoginFactors, "rateLimit" | "password">;
  readonly serverKey: Buffer;
  readonly invitesDir: string;
  log(level: LogLevel, kind: string, fields: Readonly<Record<string, LogValue>>): void;
  /**
   * Regulation of decides with rateLimit "ignore" (red team rt1, note d): such a caller skips the
   * state file's RATE_LIMIT, so without this any member of the socket group (a compromised
   * gateway) had an unthrottled guessing oracle for every user. Default DEFAULT_REGULATION: per
   * user across all client addresses, from 5 failures on, attempts are paced 250 ms doubling to
   * 10 s apart (about 6 a minute, the rate of the reference RATE_LIMIT 3 30); the owner's right
   * code gets through once the pause is over. "off" only for benchmarks.
   */
  readonly regulation?: RegulatorPolicy | "off" | undefined;
}

/** The account could not be looked up now (NSS slow or down): 503, ask again later. */
export class ServiceBusy extends Error {
  override name = "ServiceBusy";
}

const inviteTag = (id: string) => id.slice(0, 12);

/** Refusals that tell the caller something about the code: they count as guesses for the regulation. */
const GUESSES: ReadonlySet<string> = new Set(["wrong", "replay", "skew-pending", "rate-limited"]);

/** A keyed digest of an account's secret: stable for the same key, user and secret. */
export function fingerprintOf(key: Buffer, user: string, secret: string): string {
  return createHmac("sha256", key).update(`otpgate-account-fingerprint\0${user}\0${secret}`).digest("base64url");
}

export function localDecisionService<A extends ServiceAccount>(deps: LocalServiceDeps<A>): DecisionService {
  const found = async (user: string): Promise<A | null> => {
    const account = await deps.lookup(user);
    if (account === "busy") throw new ServiceBusy(`the account ${user} cannot be looked up now (NSS busy or down); try again`);
    return account;
  };

  const regulator = deps.regulation === "off" ? null : new Regulator(deps.regulation ?? DEFAULT_REGULATION);

  async function decide(req: DecideRequest): Promise<DecideReply> {
    if (regulator === null || req.rateLimit !== "ignore" || userNameProblem(req.user) !== null) return decideOnce(req);
    const now = deps.clock.nowMs();
    const reservation = regulator.begin({ subject: `user:${req.user}`, address: attemptAddress(req.clientAddress ?? "") }, now);
    if (reservation.kind !== "allowed") {
      const retryAfterMs = "retryAfterMs" in reservation ? reservation.retryAfterMs : 0;
      deps.log("notice", "decide:rejected:regulated", {
        event: "decide",
        user: req.user,
        service: req.service,
        rhost: req.clientAddress,
        rateLimit: req.rateLimit,
        result: "rejected",
        reason: "rate-limited",
        regulation: reservation.kind,
        retryAfterMs,
      });
      return { outcome: "rejected", reason: "rate-limited" };
    }
    let how: Settlement = "refund";
    try {
      const reply = await decideOnce(req);
      how = reply.outcome === "accepted" ? "success" : reply.outcome === "rejected" && GUESSES.has(reply.reason) ? "guess" : "refund";
      return reply;
    } finally {
      regulator.settle(reservation.ticket, deps.clock.nowMs(), how);
    }
  }

  async function decideOnce(req: DecideRequest): Promise<DecideReply> {
    const started = deps.clock.nowMs();
    const decision = await decideResident(
      { lookup: deps.lookup, storeFor: deps.storeFor, clock: deps.clock, macFactory: deps.macFactory },
      { user: req.user, code: req.code, service: req.service, clientAddress: req.clientAddress, factors: { ...deps.factors, password: false, rateLimit: req.rateLimit ?? "apply" } },
    );
    if (decision === "busy") {
      deps.log("warning", "decide:busy", { event: "decide", user: req.user, service: req.service, rhost: req.clientAddress, result: "error", reason: "lookup-busy" });
      throw new ServiceBusy(`the account ${req.user} cannot be looked up now (NSS busy or down); try again`);
    }
    const { level, fields } = logOf(decision, false);
    deps.log(level, `decide:${decision.outcome}:${decision.outcome === "accepted" ? decision.via : decision.reason}`, {
      event: "decide",
      user: req.user,
      service: req.service,
      rhost: req.clientAddress,
      rateLimit: req.rateLimit,
      ...fields,
      ms: deps.clock.nowMs() - started,
    });
    if (decision.outcome === "accepted") return { outcome: "accepted", via: decision.via, ...(decision.warning ? { warning: decision.warning } : {}) };
    return { outcome: decision.outcome, reason: decision.reason };
  }

  async function account(req: AccountRequest): Promise<AccountReply> {
    const problem = userNameProblem(req.user);
    if (problem !== null) throw new BadRequest(`user: the user name ${problem}`);
    const acct = await found(req.user);
    let reply: AccountReply;
    if (!acct) reply = { account: "unknown" };
    else {
      const store = deps.storeFor(acct);
      try {
        const text = store.peek();
        if (text === null) reply = { account: "not-enrolled" };
        else {
          const secret = secretLine(text);
          reply =
            decodeGaSecret(secret) === null
              ? { account: "unusable", problem: `${store.path} has no valid secret on its first line` }
              : { account: "enrolled", fingerprint: fingerprintOf(deps.serverKey, acct.name, secret) };
        }
      } catch (err) {
        if (!(err instanceof OtpgateError)) throw err;
        reply = { account: "unusable", problem: err.message };
      }
    }
    deps.log("info", `account:${reply.account}`, { event: "account", user: req.user, account: reply.account });
    return reply;
  }

  async function invite(req: InviteRequest): Promise<InviteReply> {
    checkInvitesDir(deps.invitesDir);
    const found = findInvite(deps.invitesDir, req.token, deps.clock.nowMs());
    deps.log("info", `invite:${found ? "found" : "none"}`, { event: "invite", invite: found ? inviteTag(found.id) : undefined, result: found ? "found" : "none", user: found?.user });
    return { invite: found ? { id: found.id, user: found.user, replace: found.replace, expiresAt: found.expiresAt } : null };
  }

  async function enroll(req: EnrollRequest): Promise<EnrollReply> {
    checkInvitesDir(deps.invitesDir);
    const invitation = findInvite(deps.invitesDir, req.token, deps.clock.nowMs());
    const result = (reply: EnrollReply, extra: Readonly<Record<string, LogValue>> = {}): EnrollReply => {
      deps.log(reply.result === "enrolled" ? "info" : "notice", `enroll:${reply.result}`, {
        event: "enroll",
        invite: invitation ? inviteTag(invitation.id) : undefined,
        user: invitation?.user,
        result: reply.result,
        ...extra,
      });
      return reply;
    };
    if (!invitation) return result({ result: "gone" });
    if (decodeGaSecret(req.secret) === null) throw new BadRequest("secret: must be base32");
    const acct = await found(invitation.user);
    if (!acct) return result({ result: "unknown-user" });
    const store = deps.storeFor(acct);
    const identity: Identity = { uid: acct.uid, gid: acct.gid, groups: acct.groups };
    // Looked at as the user: a path below a directory only the user may enter is theirs to show.
    const exists = () => asUser(identity, () => existsNoFollow(store.path));
    if (!invitation.replace && exists()) return result({ result: "exists" });
    const claim = claimInvite(deps.invitesDir, invitation);
    if (!claim) return result({ result: "gone" });
    try {
      asUser(identity, () => writeNewStateFile(store.path, enrollmentText(INVITE_ENROLL_SETTINGS, { secret: req.secret, scratchCodes: req.scratchCodes }), { replace: invitation.replace }));
    } catch (err) {
      claim.release();
      // Enrolled by other means between the check and the write: not a failure of ours.
      if (!invitation.replace && exists()) return result({ result: "exists" });
      deps.log("err", "enroll:error", { event: "enroll", invite: inviteTag(invitation.id), user: invitation.user, result: "error", problem: err instanceof Error ? err.message : String(err) });
      throw err;
    }
    claim.done();
    return result({ result: "enrolled", user: acct.name, replaced: invitation.replace }, { replaced: invitation.replace });
  }

  return { decide, account, invite, enroll };
}

function existsNoFollow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
