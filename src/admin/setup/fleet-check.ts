// setup ssh --backend radius --store (issue 11): before any file is written, the fleet database
// must be reachable with the unit's settings (URL, password file, key file), its schema current
// (never migrated from here: `otpgate db migrate` does that, once, for the fleet), and - for the
// lock-out guard - the admin's account read from it. Any failure refuses the setup with the fix;
// nothing has been changed at that point.

import { ConfigError } from "../../core/errors.js";
import { FleetUnavailable } from "../../ports/fleet.js";
import type { FleetConnectOptions } from "../../stores/pg/open.js";
import { SetupError } from "./apply.js";

export interface FleetCheck {
  /** The admin's reference document (secret decrypted), null when not enrolled or no admin asked. */
  readonly adminDocument: string | null;
}

export async function checkFleetForSetup(options: FleetConnectOptions, admin: string | undefined): Promise<FleetCheck> {
  const { openFleetStore } = await import("../../stores/pg/open.js");
  let store;
  try {
    store = await openFleetStore({ ...options, migrate: false, log: () => {} });
  } catch (err) {
    if (err instanceof FleetUnavailable)
      throw new SetupError(
        `cannot reach the fleet database, so nothing was changed (every login would be refused): ${err.message.replace(/; the login is refused: try again when it is back$/, "")}. Check --store, --db-password-file and that PostgreSQL accepts this host, then run setup again`,
      );
    if (err instanceof ConfigError) throw new SetupError(`the fleet database cannot be used, so nothing was changed: ${err.message}`);
    throw err;
  }
  try {
    const doc = admin === undefined ? null : await store.document(admin);
    return { adminDocument: doc?.text ?? null };
  } catch (err) {
    if (err instanceof FleetUnavailable || err instanceof ConfigError) throw new SetupError(`the fleet database cannot be used, so nothing was changed: ${err.message}`);
    throw err;
  } finally {
    await store.close().catch(() => {});
  }
}
