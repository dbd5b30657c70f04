// Fleet-store test helpers (issue 11): a key file in a temp dir, a store opened on a throwaway
// cluster (test/helpers/postgres.ts), closed after the test.

import { join } from "node:path";
import type { TestContext } from "node:test";
import type { FleetConnectOptions } from "../../src/stores/pg/open.js";
import { connectFleetStore } from "../../src/stores/pg/connect.js";
import { createKeyFile } from "../../src/stores/pg/key-file.js";
import type { PgFleetStore } from "../../src/stores/pg/fleet-store.js";
import type { Cluster } from "./postgres.js";
import { tempDir } from "./system.js";

/** A fresh key file (one key) in its own temp dir. */
export function keyFile(t: TestContext): string {
  const path = join(tempDir(t, "otpgate-fleet-keys-"), "db.key");
  createKeyFile(path, new Date());
  return path;
}

/** A store on `cluster` (migrated), closed after the test. */
export async function fleetStore(t: TestContext, cluster: Cluster, keys: string, extra: Partial<FleetConnectOptions> = {}): Promise<PgFleetStore> {
  const store = await connectFleetStore({ url: cluster.url, keyFile: keys, migrate: true, log: () => {}, ...extra });
  t.after(() => store.close().catch(() => {}));
  return store;
}

export const SECRET = "2SH3V3GDW7ZNMGYE";
export const CODES = ["12345678", "23456789", "34567890", "45678901", "56789012"];
export const DOC = `${SECRET}\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n${CODES.join("\n")}\n`;
