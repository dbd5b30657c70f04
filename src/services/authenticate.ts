// One login attempt end to end: lock and load the account, decide with the pure verify(), commit
// the new state with compare-and-swap. On a conflict (someone else wrote the file in between) it
// reloads and decides again once; a second conflict rejects, it never accepts.

import { StateFileError } from "../core/errors.js";
import { recordLogin, withinGrace } from "../core/grace.js";
import type { MacFactory } from "../core/otp.js";
import type { Outcome, VerifyPolicy } from "../core/verify.js";
import { verify } from "../core/verify.js";
import type { AccountStore, Clock } from "../ports/index.js";

export type AuthOutcome =
  | Outcome
  | { readonly kind: "not-enrolled" }
  /** A login from the same host within the grace period: no code needed (reference grace_period). */
  | { readonly kind: "accepted"; readonly via: "grace"; readonly prefix: string }
  /** The file kept changing under us (another writer without our lock): refused to be safe. */
  | { readonly kind: "rejected"; readonly reason: "conflict" };

export interface AuthenticateOptions {
  /** Reference grace_period with the client's PAM_RHOST. */
  readonly grace?: { readonly rhost: string; readonly seconds: number } | undefined;
  /**
   * Reference allow_readonly: accept even when the new state cannot be written (then codes can be
   * replayed). Off by default.
   */
  readonly allowReadonly?: boolean | undefined;
  /**
   * Another factor of this login already failed (a wrong password): the code is decided as usual
   * (the same work, so timing does not tell which factor was wrong), but nothing at all is
   * written: no DISALLOW_REUSE step, no scratch code, no HOTP counter, no grace record, and no
   * RATE_LIMIT attempt either. Such a refusal proves nothing about the code, and the state file is
   * shared by every service (SSH, RStudio, RADIUS): a client who knows no secret must not be able
   * to use up the owner's RATE_LIMIT (issue 8, items 3 and F3). Password guessing is limited by
   * the caller's refusal floor and the system's own password lockout instead.
   */
  readonly decideOnly?: boolean | undefined;
}

export interface AuthResult {
  readonly outcome: AuthOutcome;
  /** Set when allow_readonly let a login through although its state could not be saved. */
  readonly unsaved?: string;
}

export interface AuthenticateDeps {
  readonly store: AccountStore;
  readonly clock: Clock;
  readonly macFactory: MacFactory;
}

export async function authenticate(deps: AuthenticateDeps, entry: string, policy: VerifyPolicy): Promise<AuthOutcome> {
  return (await authenticateWith(deps, entry, policy, {})).outcome;
}

export async function authenticateWith(deps: AuthenticateDeps, entry: string, policy: VerifyPolicy, options: AuthenticateOptions): Promise<AuthResult> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const account = await deps.store.acquire();
    if (!account) return { outcome: { kind: "not-enrolled" } };
    try {
      const nowMs = deps.clock.nowMs();
      const now = Math.floor(nowMs / 1000);
      if (options.grace && !options.decideOnly && withinGrace(account.text, options.grace.rhost, now, options.grace.seconds)) {
        return { outcome: { kind: "accepted", via: "grace", prefix: "" } };
      }
      const result = verify(account.text, entry, nowMs, policy, deps.macFactory);
      if (options.decideOnly) return { outcome: result.outcome };
      let next = result.next;
      if (result.outcome.kind === "accepted" && options.grace) next = recordLogin(next ?? account.text, options.grace.rhost, now);
      if (next === null) return { outcome: result.outcome };
      try {
        const committed = await account.commit(next);
        if (committed.ok) return { outcome: result.outcome };
      } catch (err) {
        if (options.allowReadonly && err instanceof StateFileError && result.outcome.kind === "accepted") {
          return { outcome: result.outcome, unsaved: err.message };
        }
        throw err;
      }
    } finally {
      await account.release();
    }
  }
  return { outcome: { kind: "rejected", reason: "conflict" } };
}
