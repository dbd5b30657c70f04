// otpgate status --store URL (--user NAME | --all): the accounts in the fleet database, shown like
// the state files' (status.ts), from FleetStore.list(): option lines and a count of emergency
// codes, never the secret or a code.

import { UsageError, type ExitCode } from "../../../core/errors.js";
import { printable, printableJson } from "../../../core/printable.js";
import { assertUserName } from "../../../core/user-name.js";
import { statusOfText, type AccountStatus } from "../../../admin/account-status.js";
import { systemClock } from "../../../platform/clock.js";
import type { FleetAccountSummary } from "../../../ports/fleet.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";
import { useFleet } from "./fleet-open.js";
import { describe, oneLine, options } from "./status.js";

/** A valid line 1 for summarize(): the fleet's list() carries no secret, and none is needed here. */
const NO_SECRET = "AAAAAAAAAAAAAAAA";

export type FleetAccountStatus = AccountStatus & { readonly store: "postgres"; readonly keyId: string; readonly createdAt: string; readonly updatedAt: string };

export function fleetAccountStatus(row: FleetAccountSummary, nowMs: number): FleetAccountStatus {
  const options = row.options === "" || row.options.endsWith("\n") ? row.options : `${row.options}\n`;
  const status = statusOfText(row.user, `the fleet database (secret encrypted under key ${row.keyId})`, `${NO_SECRET}\n${options}`, nowMs);
  return {
    ...status,
    emergencyCodesLeft: row.scratchCodes,
    store: "postgres",
    keyId: row.keyId,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}

/** The command on the fleet database (FLEET_ACCOUNT_COMMANDS; --help is the file command's). */
export async function fleetStatus(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("status", argv, options);
  if (values.secret !== undefined) throw new UsageError("-s names state files; with --store the accounts are in the fleet database: leave -s out");
  if (values.all && values.user !== undefined) throw new UsageError("--all and --user cannot be combined");
  if (!values.all && values.user === undefined) throw new UsageError("with --store, give --user NAME or --all");
  if (values.user !== undefined) assertUserName(values.user);
  return useFleet("status", values, async (store) => {
    const now = systemClock.nowMs();
    const rows = (await store.list(values.all ? undefined : values.user)).map((r) => fleetAccountStatus(r, now));
    if (values.all) {
      if (values.json) io.out(printableJson(rows));
      else if (rows.length === 0) io.out("no accounts in the fleet database");
      else for (const r of rows) io.out(printable(oneLine(r)));
      return 0;
    }
    const s = rows[0];
    if (!s) {
      if (values.json) io.out(printableJson({ user: values.user, store: "postgres", enrolled: false }));
      else io.out(printable(`${values.user}: not enrolled in the fleet database`));
      return 1;
    }
    if (values.json) io.out(printableJson(s));
    else for (const line of describe(s)) io.out(printable(line));
    return s.problems?.length ? 2 : 0;
  });
}
