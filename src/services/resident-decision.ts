// The login decision as a resident process (otpgate server: RADIUS and the unix-socket API) makes
// it: the account is looked up through the caller's cache first, so a lookup that cannot answer
// now (NSS down, too many waiting) is "busy" - answer later, never "no such user" - and then
// decideLogin decides with that account's store. The code is the only factor here; the factors
// (nullok, skew) come from the server's options, the rate limit from the front-end.
//
// The store may be the fleet database (ports/fleet.ts): it gets the code being decided (the
// emergency codes are digests there), and when the database cannot be reached (FleetUnavailable
// from acquire, commit or release) the decision is an error with reason "unavailable" - closed:
// the login is refused - and never carries the driver's message, which may name the database.

import { userNameProblem } from "../core/user-name.js";
import type { MacFactory } from "../core/otp.js";
import { FleetUnavailable } from "../ports/fleet.js";
import type { AccountStore, Clock, LockedAccount } from "../ports/index.js";
import { decideLogin, type LoginDecision, type LoginFactors } from "./login.js";

export interface ResidentDeps<A> {
  /** The account of a valid name: null when there is none, "busy" when that cannot be told now. */
  lookup(name: string): Promise<A | null | "busy">;
  /** The account's store (state file: switching to the owner's ids for each file section; fleet: `code` is the entry decided). */
  storeFor(account: A, code: string): AccountStore & { readonly path?: string };
  readonly clock: Clock;
  readonly macFactory: MacFactory;
  /** Told of every decision made (not of "busy"): the fleet's audit table. */
  decided?(req: ResidentRequest, decision: LoginDecision): void;
}

export interface ResidentRequest {
  readonly user: string;
  readonly code: string;
  readonly service: string;
  readonly clientAddress?: string | undefined;
  readonly factors: LoginFactors;
}

/** What a decision says when the fleet database could not be reached (no driver text: it may name hosts). */
export const UNAVAILABLE_PROBLEM = "the fleet database cannot be reached or answered too late; logins are refused until it is back";

/** The decision, or "busy" when the account could not be looked up now (nothing was decided). */
export async function decideResident<A>(deps: ResidentDeps<A>, req: ResidentRequest): Promise<LoginDecision | "busy"> {
  const account = userNameProblem(req.user) === null ? await deps.lookup(req.user) : null;
  if (account === "busy") return "busy";
  let unavailable = false;
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      if (err instanceof FleetUnavailable) unavailable = true;
      throw err;
    }
  };
  let decision = await decideLogin(
    {
      openAccount: () => {
        if (account === null) return null;
        const store = deps.storeFor(account, req.code);
        const guarded: AccountStore = {
          acquire: () =>
            guard(async () => {
              const locked = await store.acquire();
              return locked === null ? null : guardLocked(locked, guard);
            }),
        };
        return { store: guarded, location: store.path ?? req.user };
      },
      // The code is the only factor a resident decision checks (factors.password is never set).
      checkPassword: async () => false,
      clock: deps.clock,
      macFactory: deps.macFactory,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    },
    { user: req.user, token: req.code, service: req.service, rhost: req.clientAddress, factors: { ...req.factors, password: false } },
  );
  if (unavailable && decision.outcome !== "accepted") decision = { outcome: "error", reason: "unavailable", detail: { problem: UNAVAILABLE_PROBLEM } };
  deps.decided?.(req, decision);
  return decision;
}

function guardLocked(locked: LockedAccount, guard: <T>(op: () => Promise<T>) => Promise<T>): LockedAccount {
  return {
    text: locked.text,
    version: locked.version,
    location: locked.location,
    commit: (text) => guard(() => locked.commit(text)),
    release: () => guard(() => locked.release()),
  };
}
