// otpgate enroll --user NAME --store URL: the same enrollment (flags, questions, QR code, codes
// shown once, enroll.ts's dialog), saved into the fleet database instead of a state file.

import { StateFileError, UsageError, type ExitCode } from "../../../core/errors.js";
import { lookupUserByName } from "../../../platform/users.js";
import { ConfigError } from "../../../core/errors.js";
import type { Output } from "../output.js";
import { asItself, planQrTargets } from "../qr-targets.js";
import { enrollWithDialog, type EnrollDestination } from "./enroll.js";
import { parseEnrollFlags } from "./enroll-flags.js";
import { useFleet } from "./fleet-open.js";

/** The command on the fleet database (FLEET_ACCOUNT_COMMANDS; --help is the file command's). */
export async function fleetEnroll(argv: string[], io: Output): Promise<ExitCode> {
  const flags = parseEnrollFlags(argv);
  if (flags.secret !== undefined) throw new UsageError("-s names a state file; with --store the account is saved in the fleet database: leave -s out");
  if (flags.user === undefined) throw new UsageError("with --store, name the account: otpgate enroll --user NAME --store URL");
  const name = flags.user;
  return useFleet("enroll", flags.store, async (store) => {
    const account = lookupUserByName(name);
    if (!account) throw new ConfigError(`no such user "${name}"; check the name with getent passwd (the fleet enrolls accounts the hosts know)`);
    if (!flags.force && (await store.list(account.name)).length > 0) {
      throw new UsageError(`${account.name} is already enrolled in the fleet database; pass -f/--force to replace it (the old secret and emergency codes stop working on every host)`);
    }
    // Every output is checked now, before any question; root writes the images (mode 0600).
    const qrTargets = planQrTargets({ png: flags.qrPng, svg: flags.qrSvg }, { overwrite: flags.force, rootForOther: false, asRoot: asItself, user: account.name });
    const destination: EnrollDestination = {
      question: `Do you want me to save ${account.name}'s new secret in the fleet database?`,
      save: async (text) => {
        const result = await store.put(account.name, text, flags.force ? "replace" : "create");
        if (result === "exists") throw new StateFileError(`${account.name} was enrolled in the fleet database meanwhile; nothing was written (pass -f/--force to replace it)`);
      },
      saved: "the fleet database",
    };
    return enrollWithDialog(io, flags, account.name, destination, qrTargets, asItself);
  });
}
