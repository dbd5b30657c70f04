// otpgate codes --user NAME --store URL [--regenerate]: the emergency codes of an account in the
// fleet database (kept there as digests: a count, or new codes shown once).

import { UsageError, type ExitCode } from "../../../core/errors.js";
import { generateScratchCodes } from "../../../core/enroll.js";
import { assertUserName } from "../../../core/user-name.js";
import { systemRandom } from "../../../platform/random.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";
import { newCodeCount, options, showNewCodes } from "./codes.js";
import { useFleet } from "./fleet-open.js";

/** The command on the fleet database (FLEET_ACCOUNT_COMMANDS; --help is the file command's). */
export async function fleetCodes(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("codes", argv, options);
  if (values.secret !== undefined) throw new UsageError("-s names a state file; with --store the account is in the fleet database: leave -s out");
  const user = values.user;
  if (user === undefined) throw new UsageError("with --store, name the account: otpgate codes --user NAME --store URL");
  assertUserName(user);
  const count = newCodeCount(values);
  return useFleet("codes", values, async (store) => {
    if (!values.regenerate) {
      const row = (await store.list(user))[0];
      if (!row) {
        io.err(`${user} is not enrolled in the fleet database: enroll it with otpgate enroll --user ${user} --store URL`);
        return 1;
      }
      io.out(`${user} has ${row.scratchCodes} emergency codes left in the fleet database; otpgate codes --regenerate --user ${user} --store URL replaces them with new ones`);
      return 0;
    }
    const codes = generateScratchCodes(count, systemRandom);
    if (!(await store.replaceScratchCodes(user, codes))) {
      io.err(`${user} is not enrolled in the fleet database: enroll it with otpgate enroll --user ${user} --store URL`);
      return 1;
    }
    showNewCodes(io, user, codes);
    return 0;
  });
}
