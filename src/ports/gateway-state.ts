// The gateway's shared state (issue 11): what two or more gateway instances behind one load
// balancer must agree on — ended sessions (a logout, "log out everywhere") and the regulation's
// bans. Without `store:` in the gateway's configuration there is no shared state: sessions_file
// and the in-memory regulator keep today's behaviour. With `store: postgres://…` it lives in the
// fleet database (stores/pg/gateway-state.ts); each instance writes its own decisions there and
// reads everybody's by polling (adapters/http/shared-state.ts).

import type { Ban } from "../core/web/regulation.js";

export type { Ban } from "../core/web/regulation.js";

/** One ended session or one "log out everywhere", as stored. */
export type Revocation =
  /** The session `sid` is ended; `until`: when it would have expired anyway (Unix ms). */
  | { readonly kind: "session"; readonly sid: string; readonly until: number }
  /** Sessions of `user` created at or before `at` (Unix ms) are ended; kept until `until`. */
  | { readonly kind: "user"; readonly user: string; readonly at: number; readonly until: number };

/** Most bans written by one bans() call (one statement). */
export const MAX_BAN_BATCH = 2000;

/**
 * The longest a gateway session can live: session.absolute's upper bound in the configuration
 * (adapters/http/gateway-config.ts; a unit test keeps the two equal). A "log out everywhere" is kept
 * this long, whatever the instance that made it has as its own session.absolute: every instance
 * sharing the store may have a longer one (RT-B F4), and a session created before it must stay ended.
 */
export const LONGEST_SESSION_MS = 400 * 86_400_000;

/** What changed since the previous poll (or everything still in force, for the first). */
export interface SharedChanges {
  readonly revocations: readonly Revocation[];
  readonly bans: readonly Ban[];
  /** Pass to the next poll (opaque: the database's clock). */
  readonly cursor: number;
}

export interface GatewayStateStore {
  /** Where it is, for messages (the URL without a password). */
  readonly where: string;
  /** Record a revocation; throws (GatewayStateUnavailable) when the database cannot be reached. */
  revoke(revocation: Revocation): Promise<void>;
  /**
   * Record bans decided by this instance, all in one statement (at most MAX_BAN_BATCH: the caller
   * batches, see adapters/http/shared-state.ts); throws like revoke().
   */
  bans(bans: readonly Ban[]): Promise<void>;
  /** Everything recorded since `cursor` (null: everything still in force); throws like revoke(). */
  changes(cursor: number | null, now: number): Promise<SharedChanges>;
  /** Delete what has expired (revocations and bans past their `until`). */
  prune(now: number): Promise<void>;
  /** The privileges the gateway's role lacks (e.g. "INSERT ON otpgate_gateway_bans"); for --check-config. */
  missingPrivileges?(): Promise<readonly string[]>;
  close(): Promise<void>;
}

/** The shared state cannot be reached or answered too late. */
export class GatewayStateUnavailable extends Error {
  override name = "GatewayStateUnavailable";
}

/**
 * The database answered but refused a write or read for a reason that retrying will not fix: a
 * missing privilege (SQLSTATE class 42) or a constraint (class 23). A configuration error, not an
 * outage: the message says what to grant or fix.
 */
export class GatewayStateRefused extends Error {
  override name = "GatewayStateRefused";
}
