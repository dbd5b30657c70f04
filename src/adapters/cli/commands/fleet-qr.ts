// otpgate qr --user NAME --store URL: an account's QR code, secret and URI again, from the fleet
// database (FleetStore.document), rendered by qr.ts's showKey like a state file's.

import { UsageError, type ExitCode } from "../../../core/errors.js";
import { assertUserName } from "../../../core/user-name.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";
import { parseQrMode } from "../qr-output.js";
import { asItself, planQrTargets } from "../qr-targets.js";
import { useFleet } from "./fleet-open.js";
import { options, showKey } from "./qr.js";

/** The command on the fleet database (FLEET_ACCOUNT_COMMANDS; --help is the file command's). */
export async function fleetQr(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("qr", argv, options);
  if (values.secret !== undefined) throw new UsageError("-s names a state file; with --store the account is in the fleet database: leave -s out");
  const user = values.user;
  if (user === undefined) throw new UsageError("with --store, name the account: otpgate qr --user NAME --store URL");
  assertUserName(user);
  parseQrMode(values["qr-mode"] ?? "UTF8");
  return useFleet("qr", values, async (store) => {
    const doc = await store.document(user);
    if (doc === null) {
      io.err(`${user} is not enrolled in the fleet database: enroll it with otpgate enroll --user ${user} --store URL`);
      return 1;
    }
    const qrTargets = planQrTargets({ png: values["qr-png"], svg: values["qr-svg"] }, { overwrite: values.force === true, rootForOther: false, asRoot: asItself, user });
    io.err(`warning: showing ${user}'s secret; anyone who sees it can generate ${user}'s codes on every host of the fleet`);
    return showKey(io, doc.text, user, values, qrTargets, `${user}'s account in the fleet database`);
  });
}
