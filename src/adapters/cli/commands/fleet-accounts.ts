// The account commands that run in the fleet bundle (fleet-main.ts FLEET_COMMANDS): the --store
// variants of enroll, status, codes and qr, and db import / db export.

import type { ExitCode } from "../../../core/errors.js";
import type { Output } from "../output.js";
import { runExport, runImport } from "./db-admin.js";
import { fleetCodes } from "./fleet-codes.js";
import { fleetEnroll } from "./fleet-enroll.js";
import { fleetQr } from "./fleet-qr.js";
import { fleetStatus } from "./fleet-status.js";

export const FLEET_ACCOUNT_COMMANDS: Readonly<Record<string, (argv: string[], io: Output) => Promise<ExitCode>>> = {
  enroll: fleetEnroll,
  status: fleetStatus,
  codes: fleetCodes,
  qr: fleetQr,
  "db import": runImport,
  "db export": runExport,
};
