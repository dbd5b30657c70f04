// otpgate codes: how many emergency codes are left, and --regenerate to replace them (shown once).

import { DEFAULT_SCRATCH_CODES, MAX_SCRATCH_CODES, generateScratchCodes } from "../../../core/enroll.js";
import { StateFileError, UsageError, type ExitCode, ENROLL_HINT } from "../../../core/errors.js";
import { replaceScratchCodes, scratchEntries } from "../../../formats/ga-document.js";
import { systemRandom } from "../../../platform/random.js";
import { ACCOUNT_OPTIONS, openAccount } from "./account-options.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { STORE_OPTIONS } from "../store-options.js";
import { handOverToFleet, wantsFleet } from "../fleet-handover.js";

export const options = {
  ...ACCOUNT_OPTIONS,
  regenerate: { type: "boolean", help: "replace the emergency codes" },
  "emergency-codes": { type: "string", short: "e", value: "N", help: "how many new codes, 1-10 (default 5)" },
  ...STORE_OPTIONS,
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "codes",
  {
    usage: ["[-s FILE | --user NAME] [--regenerate [-e N]]", "--user NAME --store URL [--regenerate [-e N]]   (root: the fleet database)"],
    about: `
Without --regenerate: how many emergency codes the account has left (they are never shown
again after enrollment). With --regenerate: replace all emergency codes with N new ones
(default 5), written atomically under the account's lock, and show them once. With --store:
the account in the fleet database (the codes are stored as digests there).`,
    after: `
Exit status: 0 done, 1 not enrolled, 2 usage or file error.

Examples:
  otpgate codes
  otpgate codes --regenerate -e 8`,
  },
  options,
);

/** -e N with --regenerate (default 5). */
export function newCodeCount(values: { regenerate?: boolean | undefined; "emergency-codes"?: string | undefined }): number {
  const countText = values["emergency-codes"];
  if (countText !== undefined && !values.regenerate) throw new UsageError("-e only makes sense with --regenerate");
  const count = countText === undefined ? DEFAULT_SCRATCH_CODES : Number(countText);
  if (!/^[0-9]+$/.test(countText ?? "5") || count < 1 || count > MAX_SCRATCH_CODES) {
    throw new UsageError(`-e requires an argument in the range 1..${MAX_SCRATCH_CODES}, not "${countText}"`);
  }
  return count;
}

/** The new codes, shown once. */
export function showNewCodes(io: Output, user: string, codes: readonly number[]): void {
  io.out(`New emergency codes for ${user} (each works once; the old ones no longer work):`);
  for (const code of codes) io.out(`  ${code}`);
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("codes", argv, options);
  if (values.help) {
    io.out(help);
    return 0;
  }
  if (wantsFleet(values)) return handOverToFleet("codes", argv, io);
  const count = newCodeCount(values);
  const { user, store } = openAccount(values);
  if (!values.regenerate) {
    const text = store.peek();
    if (text === null) {
      io.err(`${user.name} is not enrolled (no ${store.path}); ${ENROLL_HINT}`);
      return 1;
    }
    io.out(`${user.name} has ${scratchEntries(text).length} emergency codes left; otpgate codes --regenerate replaces them with new ones`);
    return 0;
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    const account = await store.acquire();
    if (!account) {
      io.err(`${user.name} is not enrolled (no ${store.path}); ${ENROLL_HINT}`);
      return 1;
    }
    try {
      const codes = generateScratchCodes(count, systemRandom);
      const result = await account.commit(replaceScratchCodes(account.text, codes));
      if (!result.ok) continue;
      showNewCodes(io, user.name, codes);
      return 0;
    } finally {
      await account.release();
    }
  }
  throw new StateFileError(`${store.path} kept changing while the codes were replaced; nothing was changed, try again`);
}
