// Opening the fleet store (issue 11): one bounded node-postgres pool for a postgres:// URL, the
// schema checked (or migrated when asked), the key file loaded. The one entry point composition
// roots use; see ports/fleet.ts for what the store does.

import { ConfigError } from "../../core/errors.js";
import type { FleetStore } from "../../ports/fleet.js";
import { fleetUrlProblem } from "./url.js";

export const DEFAULT_DB_KEY_FILE = "/etc/otpgate/db.key";
export const DEFAULT_DB_PASSWORD_FILE = "/etc/otpgate/db.password";

export interface FleetConnectOptions {
  /** postgres://user@host:port/db?sslmode=verify-full&sslrootcert=/etc/otpgate/db-ca.crt (no password in it). */
  readonly url: string;
  /** The database password (first line), a private file; never argv, never the URL. */
  readonly passwordFile?: string | undefined;
  /** The secrets' key file; null for a process that never touches secrets (the gateway's revocations and bans). */
  readonly keyFile: string | null;
  /** This host's name for the audit table (default os.hostname()). */
  readonly host?: string | undefined;
  /** Apply pending schema migrations first (otherwise an older schema is refused with the command that migrates). */
  readonly migrate?: boolean | undefined;
  /** Pool size (default 10), connect and statement timeouts in ms (default 5000 each). */
  readonly poolMax?: number | undefined;
  readonly connectTimeoutMs?: number | undefined;
  readonly statementTimeoutMs?: number | undefined;
  /** Audit records older than this many days are deleted (default 90; 0 keeps them). */
  readonly auditRetentionDays?: number | undefined;
  /** A resident process's first retention pass this many ms after opening (default 60000; hourly after it). */
  readonly firstAuditPruneAfterMs?: number | undefined;
  /** Where the store's warnings go (a dropped connection, audit records dropped); default stderr. Never a secret. */
  readonly log?: ((level: "warning" | "err", message: string) => void) | undefined;
}

/** True for a store value that names the fleet database. */
export const isFleetUrl = (store: string): boolean => /^postgres(ql)?:\/\//.test(store);

/**
 * Connect: the key file read (unless keyFile is null), a bounded pool, the schema checked (or
 * migrated with `migrate`). Throws ConfigError (key file, URL, schema) or FleetUnavailable.
 * node-postgres is loaded here, on first use, never by the login path.
 */
export async function openFleetStore(options: FleetConnectOptions): Promise<FleetStore> {
  if (!isFleetUrl(options.url)) throw new ConfigError("the store is not a postgres:// URL");
  const problem = fleetUrlProblem(options.url);
  if (problem !== null) throw new ConfigError(problem);
  const { connectFleetStore } = await import("./connect.js");
  return connectFleetStore(options);
}
