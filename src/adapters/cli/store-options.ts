// The fleet-store options every command that can work on the PostgreSQL store takes (issue 11):
// server, enroll, status, codes, qr, db, setup ssh --backend radius. `--store` is a postgres://
// URL (the password never in it: --db-password-file); without --store the per-user files are used
// as before.

import { UsageError } from "../../core/errors.js";
import { DEFAULT_DB_KEY_FILE, DEFAULT_DB_PASSWORD_FILE, isFleetUrl, type FleetConnectOptions } from "../../stores/pg/open.js";
import { fleetUrlProblem } from "../../stores/pg/url.js";
import type { DescribedTable } from "./help.js";

export const STORE_OPTIONS = {
  store: { type: "string", value: "URL", help: "the fleet database, postgres://USER@HOST:PORT/DB[?sslmode=verify-full&sslrootcert=CA] (default: the per-user state files)" },
  "db-password-file": { type: "string", value: "FILE", help: `the database password, a private file (default ${DEFAULT_DB_PASSWORD_FILE} when it exists)` },
  "db-key-file": { type: "string", value: "FILE", help: `the key file that encrypts secrets at rest, the same on every host (default ${DEFAULT_DB_KEY_FILE})` },
} as const satisfies DescribedTable;

export interface StoreValues {
  readonly store?: string | undefined;
  readonly "db-password-file"?: string | undefined;
  readonly "db-key-file"?: string | undefined;
}

/** The connect options for --store, or null without it (the file store). */
export function fleetOptionsOf(values: StoreValues, extra: Partial<FleetConnectOptions> = {}): FleetConnectOptions | null {
  if (values.store === undefined) {
    if (values["db-password-file"] !== undefined || values["db-key-file"] !== undefined) throw new UsageError("--db-password-file and --db-key-file go with --store postgres://...");
    return null;
  }
  if (!isFleetUrl(values.store)) throw new UsageError(`--store ${JSON.stringify(values.store)}: give a postgres://USER@HOST:PORT/DATABASE URL`);
  const problem = fleetUrlProblem(values.store);
  if (problem !== null) throw new UsageError(`--store: ${problem}`);
  return { url: values.store, passwordFile: values["db-password-file"], keyFile: values["db-key-file"] ?? DEFAULT_DB_KEY_FILE, ...extra };
}
