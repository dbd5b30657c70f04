// One login attempt end to end: lock and load the account, decide with the pure verify(), commit
// the new state with compare-and-swap. On a conflict (someone else wrote the file in between) it
// reloads and decides again once; a second conflict rejects, it never accepts.

import type { MacFactory } from "../core/otp.js";
import type { Outcome, VerifyPolicy } from "../core/verify.js";
import { verify } from "../core/verify.js";
import type { AccountStore, Clock } from "../ports/index.js";

export type AuthOutcome =
  | Outcome
  | { readonly kind: "not-enrolled" }
  /** The file kept changing under us (another writer without our lock): refused to be safe. */
  | { readonly kind: "rejected"; readonly reason: "conflict" };

export interface AuthenticateDeps {
  readonly store: AccountStore;
  readonly clock: Clock;
  readonly macFactory: MacFactory;
}

export async function authenticate(deps: AuthenticateDeps, entry: string, policy: VerifyPolicy): Promise<AuthOutcome> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const account = await deps.store.acquire();
    if (!account) return { kind: "not-enrolled" };
    try {
      const result = verify(account.text, entry, deps.clock.nowMs(), policy, deps.macFactory);
      if (result.next === null) return result.outcome;
      const committed = await account.commit(result.next);
      if (committed.ok) return result.outcome;
    } finally {
      await account.release();
    }
  }
  return { kind: "rejected", reason: "conflict" };
}
