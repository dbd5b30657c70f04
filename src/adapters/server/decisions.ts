// The decision service in this process (otpgate server, running as root): the one login decision,
// what a front-end may know about an account, and the enrollment writes of an invitation. Every
// state file is read and written with its owner's ids (the store, and asUser for a new file), never
// as root. One JSON line per call goes to the log; never a code, secret or token (an invitation
// appears as the first 12 hex digits of its id).
// With the fleet store (otpgate server --store, issue 11) the accounts are the database's: no
// system account is looked up (network clients' users need not exist in /etc/passwd), account()
// reads the decrypted secret through FleetStore.document, and an invitation enrolls with
// FleetStore.put. Every decision is handed to `audit` (the fleet's audit table).

import { createHmac } from "node:crypto";
import { lstatSync } from "node:fs";
import { enrollmentText } from "../../core/enroll.js";
import { INVITE_ENROLL_SETTINGS } from "../../core/enroll-defaults.js";
import { OtpgateError } from "../../core/errors.js";
import { decodeGaSecret } from "../../core/base32.js";
import type { LogValue } from "../../core/log-fields.js";
import type { MacFactory } from "../../core/otp.js";
import { userNameProblem } from "../../core/user-name.js";
import { unknownClientKey } from "../../core/web/client-address.js";
import { attemptAddress, DEFAULT_REGULATION, Regulator, type RegulatorPolicy, type Settlement } from "../../core/web/regulation.js";
import { secretLine } from "../../formats/ga-document.js";
import { asUser, type Identity } from "../../platform/privileges.js";
import type { AccountReply, AccountRequest, DecideReply, DecideRequest, DecisionService, EnrollReply, EnrollRequest, InviteReply, InviteRequest } from "../../ports/decision-service.js";
import { FleetUnavailable, type FleetStore } from "../../ports/fleet.js";
import type { AccountStore, Clock } from "../../ports/index.js";
import { logOf, type LoginDecision, type LoginFactors, type LogLevel } from "../../services/login.js";
import { decideResident, UNAVAILABLE_PROBLEM, type ResidentDeps } from "../../services/resident-decision.js";
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

/** The accounts of the users' state files: system accounts, each file opened as its owner. */
export interface FileServiceAccounts<A extends ServiceAccount> {
  lookup(name: string): Promise<A | null | "busy">;
  storeFor(account: A): PeekableStore;
}

/** The accounts of the fleet database: any valid name; no system account involved. */
export interface FleetServiceAccounts {
  readonly fleet: FleetStore;
}

/** One decision for the audit table (the composition root adds the time and host). */
export type DecisionAudit = (entry: { readonly user: string; readonly service: string; readonly clientAddress: string | null; readonly decision: LoginDecision }) => void;

export type LocalServiceDeps<A extends ServiceAccount> = (FileServiceAccounts<A> | FleetServiceAccounts) & CommonServiceDeps;

export interface CommonServiceDeps {
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
  readonly audit?: DecisionAudit | undefined;
}

/** The account could not be looked up now (NSS slow or down): 503, ask again later. */
export class ServiceBusy extends Error {
  override name = "ServiceBusy";
}

const inviteTag = (id: string) => id.slice(0, 12);

/** The one device id every front-end device claim is counted under: a failure budget per user, not per claim. */
const FRONT_END_DEVICE = "front-end-device-claim";

/** Refusals that tell the caller something about the code: they count as guesses for the regulation. */
const GUESSES: ReadonlySet<string> = new Set(["wrong", "replay", "skew-pending", "rate-limited"]);

/** A keyed digest of an account's secret: stable for the same key, user and secret. */
export function fingerprintOf(key: Buffer, user: string, secret: string): string {
  return createHmac("sha256", key).update(`otpgate-account-fingerprint\0${user}\0${secret}`).digest("base64url");
}

export function localDecisionService<A extends ServiceAccount>(deps: LocalServiceDeps<A>): DecisionService {
  const fleet = "fleet" in deps ? deps.fleet : null;
  const files = "fleet" in deps ? null : deps;
  const found = async (user: string): Promise<A | null> => {
    const account = await files!.lookup(user);
    if (account === "busy") throw new ServiceBusy(`the account ${user} cannot be looked up now (NSS busy or down); try again`);
    return account;
  };

  const regulator = deps.regulation === "off" ? null : new Regulator(deps.regulation ?? DEFAULT_REGULATION);
  let unknownClients = 0;

  async function decide(req: DecideRequest): Promise<DecideReply> {
    if (regulator === null || req.rateLimit !== "ignore" || userNameProblem(req.user) !== null) return decideOnce(req);
    const now = deps.clock.nowMs();
    // No client address (the gateway's proxy did not name the client, RT-B F3): a key of its own per request, which bans nobody else.
    const address = req.clientAddress === undefined ? unknownClientKey(++unknownClients) : attemptAddress(req.clientAddress);
    // A front-end's device claim (RT-B F2) shares one budget per user (one device id for all), however many it claims.
    const reservation = regulator.begin({ subject: `user:${req.user}`, address, ...(req.device === true ? { device: FRONT_END_DEVICE } : {}) }, now);
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
    const decided: ResidentDeps<unknown>["decided"] = deps.audit ? (r, decision) => deps.audit!({ user: r.user, service: r.service, clientAddress: r.clientAddress ?? null, decision }) : undefined;
    const accounts: Pick<ResidentDeps<{ readonly name: string }>, "lookup" | "storeFor"> = fleet !== null
      ? { lookup: async (name) => ({ name }), storeFor: (a, code) => fleet.account(a.name, code) }
      : { lookup: files!.lookup, storeFor: files!.storeFor as (a: { readonly name: string }) => PeekableStore };
    const decision = await decideResident(
      { ...accounts, clock: deps.clock, macFactory: deps.macFactory, decided },
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

  async function fleetAccount(user: string): Promise<AccountReply> {
    let doc;
    try {
      doc = await fleet!.document(user);
    } catch (err) {
      if (err instanceof FleetUnavailable) throw new ServiceBusy(UNAVAILABLE_PROBLEM);
      throw err;
    }
    if (doc === null) return { account: "not-enrolled" };
    const secret = secretLine(doc.text);
    return decodeGaSecret(secret) === null
      ? { account: "unusable", problem: `the fleet database holds no valid secret for ${user}` }
      : { account: "enrolled", fingerprint: fingerprintOf(deps.serverKey, user, secret) };
  }

  async function account(req: AccountRequest): Promise<AccountReply> {
    const problem = userNameProblem(req.user);
    if (problem !== null) throw new BadRequest(`user: the user name ${problem}`);
    if (fleet !== null) {
      const reply = await fleetAccount(req.user);
      deps.log("info", `account:${reply.account}`, { event: "account", user: req.user, account: reply.account, store: "fleet" });
      return reply;
    }
    const acct = await found(req.user);
    let reply: AccountReply;
    if (!acct) reply = { account: "unknown" };
    else {
      const store = files!.storeFor(acct);
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
    if (fleet !== null) return fleetEnroll(invitation, req, result);
    const acct = await found(invitation.user);
    if (!acct) return result({ result: "unknown-user" });
    const store = files!.storeFor(acct);
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

  /** An invitation into the fleet database: claimed first (one use), released again when the write fails. */
  async function fleetEnroll(
    invitation: NonNullable<ReturnType<typeof findInvite>>,
    req: EnrollRequest,
    result: (reply: EnrollReply, extra?: Readonly<Record<string, LogValue>>) => EnrollReply,
  ): Promise<EnrollReply> {
    const claim = claimInvite(deps.invitesDir, invitation);
    if (!claim) return result({ result: "gone" });
    let written: "written" | "exists";
    try {
      written = await fleet!.put(invitation.user, enrollmentText(INVITE_ENROLL_SETTINGS, { secret: req.secret, scratchCodes: req.scratchCodes }), invitation.replace ? "replace" : "create");
    } catch (err) {
      claim.release();
      deps.log("err", "enroll:error", {
        event: "enroll",
        invite: inviteTag(invitation.id),
        user: invitation.user,
        result: "error",
        problem: err instanceof FleetUnavailable ? UNAVAILABLE_PROBLEM : err instanceof Error ? err.message : String(err),
      });
      if (err instanceof FleetUnavailable) throw new ServiceBusy(UNAVAILABLE_PROBLEM);
      throw err;
    }
    if (written === "exists") {
      claim.release();
      return result({ result: "exists" });
    }
    claim.done();
    return result({ result: "enrolled", user: invitation.user, replaced: invitation.replace }, { replaced: invitation.replace, store: "fleet" });
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
