// The account commands (enroll, status, codes, qr) with --store hand over to the fleet bundle
// (dist/otpgate-fleet.cjs, commands/fleet-main.ts): node-postgres is loaded only there, never on
// the login path or by the commands that use the state files.

import type { ExitCode } from "../../core/errors.js";
import type { Output } from "./output.js";
import type { StoreValues } from "./store-options.js";

/** Did the command line ask for the fleet database? */
export function wantsFleet(values: StoreValues): boolean {
  return values.store !== undefined || values["db-password-file"] !== undefined || values["db-key-file"] !== undefined;
}

/** Run `command` (with the same argv) on the fleet database. */
export async function handOverToFleet(command: "enroll" | "status" | "codes" | "qr", argv: string[], io: Output): Promise<ExitCode> {
  const fleet = await import("./commands/fleet-main.js");
  return fleet.dispatch(command, argv, io);
}
