// The account commands that run in the fleet bundle (fleet-main.ts FLEET_COMMANDS): the --store
// variants of enroll, status, codes and qr, and db import / db export.

import type { ExitCode } from "../../../core/errors.js";
import type { Output } from "../output.js";
import { run as dbExport } from "./db-export.js";
import { run as dbImport } from "./db-import.js";
import { run as fleetCodes } from "./fleet-codes.js";
import { run as fleetEnroll } from "./fleet-enroll.js";
import { run as fleetQr } from "./fleet-qr.js";
import { run as fleetStatus } from "./fleet-status.js";

export const FLEET_ACCOUNT_COMMANDS: Readonly<Record<string, (argv: string[], io: Output) => Promise<ExitCode>>> = {
  enroll: fleetEnroll,
  status: fleetStatus,
  codes: fleetCodes,
  qr: fleetQr,
  "db import": dbImport,
  "db export": dbExport,
};
