// The login decision as a resident process (otpgate server: RADIUS and the unix-socket API) makes
// it: the account is looked up through the caller's cache first, so a lookup that cannot answer
// now (NSS down, too many waiting) is "busy" - answer later, never "no such user" - and then
// decideLogin decides with that account's store. The code is the only factor here; the factors
// (nullok, skew) come from the server's options, the rate limit from the front-end.

import { userNameProblem } from "../core/user-name.js";
import type { MacFactory } from "../core/otp.js";
import type { AccountStore, Clock } from "../ports/index.js";
import { decideLogin, type LoginDecision, type LoginFactors } from "./login.js";

export interface ResidentDeps<A> {
  /** The account of a valid name: null when there is none, "busy" when that cannot be told now. */
  lookup(name: string): Promise<A | null | "busy">;
  /** The account's state file store (switching to the owner's ids for each file section). */
  storeFor(account: A): AccountStore & { readonly path?: string };
  readonly clock: Clock;
  readonly macFactory: MacFactory;
}

export interface ResidentRequest {
  readonly user: string;
  readonly code: string;
  readonly service: string;
  readonly clientAddress?: string | undefined;
  readonly factors: LoginFactors;
}

/** The decision, or "busy" when the account could not be looked up now (nothing was decided). */
export async function decideResident<A>(deps: ResidentDeps<A>, req: ResidentRequest): Promise<LoginDecision | "busy"> {
  const account = userNameProblem(req.user) === null ? await deps.lookup(req.user) : null;
  if (account === "busy") return "busy";
  return decideLogin(
    {
      openAccount: () => {
        if (account === null) return null;
        const store = deps.storeFor(account);
        return { store, location: store.path ?? req.user };
      },
      // The code is the only factor a resident decision checks (factors.password is never set).
      checkPassword: async () => false,
      clock: deps.clock,
      macFactory: deps.macFactory,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    },
    { user: req.user, token: req.code, service: req.service, rhost: req.clientAddress, factors: { ...req.factors, password: false } },
  );
}
