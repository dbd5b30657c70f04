// openFleetStore's body, loaded on demand (open.ts imports it dynamically, so `pg` is never parsed
// on the login path; the CLI bundle maps this module to dist/otpgate-fleet.cjs): the pool, the
// key file, the schema checked or migrated.

import { hostname } from "node:os";
import { PgFleetStore } from "./fleet-store.js";
import { KeyRing } from "./key-ring.js";
import { checkSchema, migrate } from "./migrations.js";
import type { FleetConnectOptions } from "./open.js";
import { createPool } from "./pool.js";

/** Where the store's own warnings go unless the caller says (one line each, never a secret). */
const stderrLog = (level: string, message: string) => {
  process.stderr.write(`otpgate: fleet store ${level}: ${message}\n`);
};

export async function connectFleetStore(options: FleetConnectOptions): Promise<PgFleetStore> {
  const log = options.log ?? stderrLog;
  // The key file first: a host without it fails before touching the database.
  const keys = options.keyFile === null ? null : new KeyRing(options.keyFile);
  const pool = createPool(options, (message) => log("warning", message));
  try {
    if (options.migrate) await migrate(pool);
    else await checkSchema(pool);
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return new PgFleetStore({
    pool,
    keys,
    keyFile: options.keyFile,
    auditRetentionDays: options.auditRetentionDays ?? 90,
    firstAuditPruneAfterMs: options.firstAuditPruneAfterMs ?? 60_000,
    log,
    host: options.host ?? hostname(),
    gateWaitMs: options.statementTimeoutMs ?? 5000,
  });
}
