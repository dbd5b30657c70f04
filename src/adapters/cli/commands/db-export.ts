// otpgate db export USER: the account from the fleet database as a state file the reference module
// (pam_google_authenticator.so) accepts, so a host can leave the fleet (issue 11). The used codes,
// counter, rate-limit stamps and skew come along; emergency codes cannot (the database keeps only
// digests): the command says how many were left out, or --new-codes issues fresh ones into both.

import { lstatSync } from "node:fs";
import { dirname, isAbsolute } from "node:path";
import { DEFAULT_SCRATCH_CODES, MAX_SCRATCH_CODES, generateScratchCodes } from "../../../core/enroll.js";
import { ConfigError, StateFileError, UsageError, type ExitCode } from "../../../core/errors.js";
import { assertUserName } from "../../../core/user-name.js";
import { formatScratchCode, replaceScratchCodes } from "../../../formats/ga-document.js";
import { groupsOf } from "../../../platform/groups.js";
import { asUser, type Identity } from "../../../platform/privileges.js";
import { describeProblems, pathProblems } from "../../../platform/trusted-path.js";
import { systemRandom } from "../../../platform/random.js";
import { lookupUserByName } from "../../../platform/users.js";
import { statePathOf } from "../../../stores/file-accounts.js";
import { writeNewStateFile } from "../../../stores/file-store.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { STORE_OPTIONS } from "../store-options.js";
import { useFleet } from "./fleet-open.js";

export const exportOptions = {
  ...STORE_OPTIONS,
  output: {
    type: "string",
    value: "FILE",
    help: "where to write the file (default ~USER/.google_authenticator); written as USER when USER is an account on this host, otherwise as root and only into a directory that only root can change",
  },
  force: { type: "boolean", short: "f", help: "replace a file that exists (its secret and codes stop working)" },
  "new-codes": { type: "boolean", help: "issue new emergency codes into the database and the file (shown once; the old ones stop working)" },
  "emergency-codes": { type: "string", short: "e", value: "N", help: `how many with --new-codes, 1-${MAX_SCRATCH_CODES} (default ${DEFAULT_SCRATCH_CODES})` },
  remove: { type: "boolean", help: "delete the account from the database once the file is written" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const exportHelp = commandHelp(
  "db export",
  {
    usage: ["USER --store URL [--output FILE] [--force] [--new-codes [-e N]] [--remove]"],
    about: `
Write USER's account from the fleet database as a google-authenticator state file (mode
0400, atomically; an existing file is kept unless --force), for a host that leaves the fleet:
pam_google_authenticator.so accepts it, and codes already used against the database stay used.
Emergency codes cannot be exported (the database keeps only their digests): the command says
how many were left out; --new-codes replaces them with new ones in the database and the file.
The account stays in the database (other hosts keep using it) unless --remove.`,
    after: `
Exit status: 0 written, 1 USER is not in the database, 2 usage, file or database error
(nothing written).

Examples:
  sudo otpgate db export alice --store postgres://otpgate@db1/otpgate --output /home/alice/alice.ga
  sudo otpgate db export carol --store postgres://otpgate@db1/otpgate --output /root/carol.ga
    (carol has no account on this host: the file is root's, in a root-only directory)
  sudo otpgate db export alice --store postgres://otpgate@db1/otpgate --new-codes --remove`,
  },
  exportOptions,
);

interface Destination {
  readonly path: string;
  /** Who writes it: the user (an account here) or root. */
  readonly writer: Identity | null;
}

function destination(user: string, output: string | undefined): Destination {
  const account = lookupUserByName(user);
  const writer = account ? { uid: account.uid, gid: account.gid, groups: groupsOf(account.name, account.gid) } : null;
  if (output !== undefined) {
    if (!isAbsolute(output)) throw new UsageError(`--output ${output}: give an absolute path`);
    return { path: output, writer };
  }
  if (!account) throw new ConfigError(`${user} has no account on this host, so there is no home directory to write to; give --output FILE`);
  return { path: statePathOf(account, {}), writer };
}

/** otpgate db export (db-admin.ts exports it as runImport/runExport). */
export async function exportCommand(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("db export", argv, exportOptions);
  if (values.help) {
    io.out(exportHelp);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("give exactly one USER; see otpgate db export --help");
  const user = positionals[0]!;
  assertUserName(user);
  const countText = values["emergency-codes"];
  if (countText !== undefined && !values["new-codes"]) throw new UsageError("-e only makes sense with --new-codes");
  const count = countText === undefined ? DEFAULT_SCRATCH_CODES : Number(countText);
  if (!/^[0-9]+$/.test(countText ?? "5") || count < 1 || count > MAX_SCRATCH_CODES) throw new UsageError(`-e requires an argument in the range 1..${MAX_SCRATCH_CODES}, not "${countText}"`);

  return useFleet("db export", values, async (store) => {
    const doc = await store.document(user);
    if (doc === null) {
      io.err(`${user} is not in the fleet database; nothing was written (otpgate status --all --store URL lists its accounts)`);
      return 1;
    }
    const dest = destination(user, values.output);
    // rt1 F5: root never writes into a directory another user can change (a symlinked component,
    // or a directory of theirs, would let them point root's write anywhere).
    if (dest.writer === null || dest.writer.uid === 0) {
      const problems = pathProblems(dirname(dest.path));
      if (problems.length > 0)
        throw new ConfigError(
          `${dest.path} is written as root (${dest.writer ? `${user} is root` : "no such account on this host"}), so its directory must be root's and writable by nobody else (${describeProblems(problems)}); write it into a root-only directory such as /root and move it into place; nothing was written`,
        );
    }
    const asWriter = <T>(fn: () => T): T => (dest.writer ? asUser(dest.writer, fn) : fn());
    // Checked before the database changes (writeNewStateFile checks again, atomically).
    const there = asWriter(() => {
      try {
        lstatSync(dest.path);
        return "exists";
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? "unknown";
      }
    });
    // rt1 F8: only an existing file is "already exists".
    if (there === "EACCES" || there === "EPERM")
      throw new StateFileError(`${dest.path}: ${user} cannot write there (the file is written as ${user}); give an --output FILE in a directory ${user} can write; nothing was written`);
    if (there !== "ENOENT" && there !== "exists") throw new StateFileError(`cannot check ${dest.path} (${there}); nothing was written`);
    if (there === "exists" && !values.force) throw new StateFileError(`${dest.path} already exists; pass --force to replace it (its secret and emergency codes stop working); nothing was written`);

    let text = doc.text;
    let codes: number[] = [];
    if (values["new-codes"]) {
      codes = generateScratchCodes(count, systemRandom);
      text = replaceScratchCodes(text, codes);
      if (!(await store.replaceScratchCodes(user, codes))) {
        io.err(`${user} was removed from the fleet database meanwhile; nothing was written`);
        return 1;
      }
    }
    try {
      asWriter(() => writeNewStateFile(dest.path, text, { replace: values.force === true }));
    } catch (err) {
      if (codes.length > 0) {
        io.out(`New emergency codes for ${user} (now in the database only, the file could not be written; each works once):`);
        for (const code of codes) io.out(`  ${formatScratchCode(code)}`);
      }
      throw err;
    }
    io.err(`wrote ${dest.path} (mode 0400) for ${user}${dest.writer ? `, owned by ${user}` : ", owned by root (no such account on this host)"}`);
    if (codes.length > 0) {
      io.out(`New emergency codes for ${user} (in the file and in the database; each works once; the old ones no longer work):`);
      for (const code of codes) io.out(`  ${formatScratchCode(code)}`);
    } else if (doc.scratchCodesOmitted > 0) {
      io.err(
        `${doc.scratchCodesOmitted} emergency code(s) were left out: the database keeps only their digests, so they cannot be written back (they still work against the database). New ones: otpgate db export ${user} --new-codes --force, or otpgate codes --regenerate --user ${user} once this host uses the file`,
      );
    }
    if (values.remove) {
      const removed = await store.remove(user);
      io.err(removed ? `removed ${user} from the fleet database` : `${user} was no longer in the fleet database`);
    } else {
      io.err(`${user} stays in the fleet database (logins through it keep working); pass --remove to delete it there`);
    }
    return 0;
  });
}
