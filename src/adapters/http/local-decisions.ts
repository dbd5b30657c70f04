// The decision service in-process: what `otpgate server` answers over its unix socket, computed by
// this process itself, for a gateway without decision_socket (it must then be able to read the
// users' state files, i.e. run as root) and for the in-process tests. The login decision is THE
// one (services/login.ts decideLogin, code only); accounts come from the user directory
// (asynchronous, cut off at its timeout, so a hanging NSS costs a refused login, not a stalled
// event loop); invitations from invites_dir; the state file is written as its owner.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { StateFileError } from "../../core/errors.js";
import { enrollmentText } from "../../core/enroll.js";
import { userNameProblem } from "../../core/user-name.js";
import { secretLine } from "../../formats/ga-document.js";
import { nodeMacFactory } from "../../platform/mac.js";
import { actAs } from "../../platform/privileges.js";
import { type AccountReply, type DecideReply, type DecisionService, type EnrollReply, type InviteReply } from "../../ports/decision-service.js";
import type { AccountStore, Clock } from "../../ports/index.js";
import { decideLogin } from "../../services/login.js";
import { statePathOf } from "../../stores/file-accounts.js";
import { writeNewStateFile } from "../../stores/file-store.js";
import { claimInvite, findInvite } from "../../stores/invite-store.js";
import { INVITE_ENROLL_SETTINGS } from "../../core/enroll-defaults.js";
import { LookupUnavailable } from "./lookup-unavailable.js";
import type { UserDirectory } from "./user-directory.js";

export interface LocalDecisionsOptions {
  readonly users: UserDirectory;
  /** state_files: where an enrollment writes the state file. */
  readonly stateFiles: string;
  /** invites_dir: the invitations of otpgate invite. */
  readonly invitesDir: string;
  readonly clock: Clock;
}

/** A store that can show its text without locking (FileAccountStore); any other is read under its lock. */
async function currentText(store: AccountStore): Promise<string | null> {
  const peekable = store as AccountStore & { peek?: () => string | null };
  if (typeof peekable.peek === "function") return peekable.peek();
  const locked = await store.acquire();
  if (!locked) return null;
  try {
    return locked.text;
  } finally {
    await locked.release();
  }
}

/** A digest of the secret line that never leaves this process (the session service keys it again). */
export const localFingerprint = (user: string, line: string): string => createHash("sha256").update(`${user}\0${line}`).digest("base64url");

export function localDecisions(options: LocalDecisionsOptions): DecisionService {
  const { users, clock } = options;
  return {
    async decide(req): Promise<DecideReply> {
      if (userNameProblem(req.user) !== null) return { outcome: "rejected", reason: "invalid-user-name" };
      const found = await users.find(req.user);
      // No answer from NSS in time: not "unknown user" (the front-end counts it against the address only).
      if (found.kind === "unavailable") return { outcome: "error", reason: `lookup-${found.reason}` };
      const store = found.kind === "found" ? users.storeOf(found.account) : null;
      const decision = await decideLogin(
        {
          openAccount: () => (store ? { store, location: (store as { path?: string }).path ?? req.user } : null),
          checkPassword: async () => false, // code only: the gateway checks its own password file first
          clock,
          macFactory: nodeMacFactory,
          sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        },
        {
          user: req.user,
          token: req.code,
          service: req.service,
          rhost: req.clientAddress,
          factors: {
            password: false,
            requirePublickey: false,
            nullok: false,
            noSkewAdjust: true,
            noIncrementHotp: false,
            gracePeriodSeconds: 0,
            allowReadonly: false,
            rateLimit: req.rateLimit ?? "apply",
          },
        },
      );
      return decision.outcome === "accepted"
        ? { outcome: "accepted", via: decision.via, ...(decision.warning ? { warning: decision.warning } : {}) }
        : { outcome: decision.outcome, reason: decision.reason };
    },

    async account(req): Promise<AccountReply> {
      if (userNameProblem(req.user) !== null) return { account: "unknown" };
      const found = await users.find(req.user);
      if (found.kind === "unavailable") throw new LookupUnavailable(found.reason, found.detail);
      if (found.kind === "unknown") return { account: "unknown" };
      let text: string | null;
      try {
        text = await currentText(users.storeOf(found.account));
      } catch (err) {
        if (err instanceof StateFileError) return { account: "unusable", problem: err.message };
        throw err;
      }
      if (text === null) return { account: "not-enrolled" };
      return { account: "enrolled", fingerprint: localFingerprint(req.user, secretLine(text)) };
    },

    async invite(req): Promise<InviteReply> {
      const invite = findInvite(options.invitesDir, req.token, clock.nowMs());
      return { invite: invite ? { id: invite.id, user: invite.user, replace: invite.replace, expiresAt: invite.expiresAt } : null };
    },

    async enroll(req): Promise<EnrollReply> {
      const invite = findInvite(options.invitesDir, req.token, clock.nowMs());
      if (!invite) return { result: "gone" };
      const found = await users.find(invite.user);
      if (found.kind === "unavailable") throw new LookupUnavailable(found.reason, found.detail);
      if (found.kind === "unknown") return { result: "unknown-user" };
      const account = found.account;
      const path = statePathOf(account, { secret: options.stateFiles });
      const claim = claimInvite(options.invitesDir, invite);
      if (!claim) return { result: "gone" };
      try {
        const restore = actAs(account.uid, account.gid);
        try {
          if (!invite.replace && existsSync(path)) {
            claim.release();
            return { result: "exists" };
          }
          writeNewStateFile(path, enrollmentText(INVITE_ENROLL_SETTINGS, { secret: req.secret, scratchCodes: req.scratchCodes }), { replace: invite.replace });
        } finally {
          restore();
        }
      } catch (err) {
        claim.release();
        throw err;
      }
      claim.done();
      return { result: "enrolled", user: invite.user, replaced: invite.replace };
    },
  };
}
