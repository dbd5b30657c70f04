// The fleet commands' bundle (dist/otpgate-fleet.cjs, issue 11): everything that talks to the
// PostgreSQL fleet store from the command line runs in here, so node-postgres is parsed only by
// the commands that need it, never on the login path. scripts/build.mjs maps imports of this
// module (and of stores/pg/connect.js) in the core bundle to the separate file.
//
// FLEET_COMMANDS: one line per command (or --store variant of a command) that runs here; the
// core module of the command calls dispatch(name, argv, io).

import { OtpgateError, type ExitCode } from "../../../core/errors.js";
import { FleetUnavailable } from "../../../ports/fleet.js";
import type { Output } from "../output.js";
import { dbMain } from "./db-main.js";
import { unreachable, useFleet } from "./fleet-open.js";
import type { StoreValues } from "../store-options.js";
import { FLEET_ACCOUNT_COMMANDS } from "./fleet-accounts.js";

// The core bundle's openFleetStore imports stores/pg/connect.js, mapped to this bundle: its export.
export { connectFleetStore } from "../../../stores/pg/connect.js";

export const FLEET_COMMANDS: Readonly<Record<string, (argv: string[], io: Output) => Promise<ExitCode>>> = {
  db: dbMain,
  ...FLEET_ACCOUNT_COMMANDS,
};

/**
 * Run a fleet command. One rule for every fleet command: a database that cannot be reached is
 * exit 2 (a configuration/environment error, nothing was decided; fleet-open.ts unreachable),
 * exit 1 stays for a refusal (not in the database, a conflict).
 */
export async function dispatch(name: string, argv: string[], io: Output): Promise<ExitCode> {
  const command = Object.hasOwn(FLEET_COMMANDS, name) ? FLEET_COMMANDS[name] : undefined;
  if (command === undefined) throw new OtpgateError(`otpgate ${name} has no fleet variant in this build`, 2);
  try {
    return await command(argv, io);
  } catch (err) {
    // Another bundle's main() sees classes of this bundle: hand it one it recognises by name.
    if (err instanceof FleetUnavailable) throw new OtpgateError((unreachable(err) as Error).message, 2);
    throw err;
  }
}

/** otpgate invite --store: whether `user` has an account in the fleet database (H7). */
export async function fleetHasAccount(command: string, values: StoreValues, user: string): Promise<boolean> {
  return useFleet(command, values, async (store) => (await store.list(user)).length > 0);
}
