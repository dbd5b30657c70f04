// Opening the fleet database for an admin command (enroll/status/codes/qr --store, db import/export):
// root only (the database password and the key file are root's), and a database that cannot be
// reached becomes one clear message with exit status 2, never an internal error.

import { ConfigError, UsageError } from "../../../core/errors.js";
import type { FleetStore } from "../../../ports/fleet.js";
import { openFleetStore } from "../../../stores/pg/open.js";
import { fleetOptionsOf, type StoreValues } from "../store-options.js";

/** The store of --store; the caller closes it (useFleet does). */
export async function openFleetFor(command: string, values: StoreValues): Promise<FleetStore> {
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0) {
    throw new UsageError(`otpgate ${command} --store needs the database password and the key file, which only root can read: run it as root (sudo otpgate ${command} ...)`);
  }
  const options = fleetOptionsOf(values);
  if (options === null) throw new UsageError(`otpgate ${command}: give the fleet database with --store postgres://USER@HOST:PORT/DATABASE`);
  try {
    return await openFleetStore(options);
  } catch (err) {
    throw unreachable(err);
  }
}

/** A FleetUnavailable (the database cannot be reached) as the command's error; others unchanged. */
export function unreachable(err: unknown): unknown {
  if (err instanceof Error && err.name === "FleetUnavailable") {
    return new ConfigError(`the fleet database cannot be used right now (${err.message}); check --store, that PostgreSQL runs and can be reached from this host, then try again`);
  }
  return err;
}

/** Open, run `fn`, close (also on errors). */
export async function useFleet<T>(command: string, values: StoreValues, fn: (store: FleetStore) => Promise<T>): Promise<T> {
  const store = await openFleetFor(command, values);
  try {
    return await fn(store);
  } catch (err) {
    throw unreachable(err);
  } finally {
    await store.close().catch(() => undefined);
  }
}
