// otpgate db import: existing google-authenticator state files into the fleet database (issue 11),
// keeping used codes, counters, rate-limit stamps, skew and emergency codes (digested by the store).
// The plan is services/import-plan.ts; where the files come from, admin/import-sources.ts.

import { type ExitCode, UsageError } from "../../../core/errors.js";
import { printable } from "../../../core/printable.js";
import { collectedCopies, singleFileCopy, thisHostCopies, type FoundCopies, type OwnedReader } from "../../../admin/import-sources.js";
import { secretIdentity } from "../../../formats/ga-merge.js";
import { countPlan, describeStep, planImport, type ImportStep } from "../../../services/import-plan.js";
import { accountStore, statePathOf } from "../../../stores/file-accounts.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { STORE_OPTIONS } from "../store-options.js";
import { useFleet } from "./fleet-open.js";

export const importOptions = {
  ...STORE_OPTIONS,
  from: { type: "string", value: "DIR", help: "files collected from several hosts, laid out DIR/HOST/USER (all root's, mode 0600; see below)" },
  file: { type: "string", value: "PATH", help: "one state file, for --user NAME" },
  user: { type: "string", value: "NAME", help: "only this user (this host's file, or the one --file names)" },
  prefer: { type: "string", value: "HOST", help: "when a user's secrets differ between hosts, HOST's copy wins" },
  replace: { type: "boolean", help: "overwrite accounts the database already has with another secret" },
  "dry-run": { type: "boolean", help: "print the plan, write nothing" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const importHelp = commandHelp(
  "db import",
  {
    usage: ["--store URL [--user NAME] [--dry-run]", "--store URL --from DIR [--prefer HOST] [--replace] [--dry-run]", "--store URL --file PATH --user NAME [--replace]"],
    about: `
Copy google-authenticator state files into the fleet database. Without --from or --file:
every account of this host with a ~/.google_authenticator, each file read as its owner.
Used codes (DISALLOW_REUSE), the HOTP counter, rate-limit stamps, clock skew and emergency
codes are kept; the secret is encrypted and the emergency codes digested by the database.

--from DIR reads files collected from several hosts, one directory per host:
  DIR/web1/alice   DIR/web1/bob   DIR/web2/alice ...
as root, so DIR, its subdirectories and files must be root's and writable by nobody else
(files mode 0600 or 0400). Import every host's files in one run: the same secret on several
hosts is merged (every used code stays used, the highest counter, and only the emergency
codes that every host still has). Different secrets for one user are reported by host name
and skipped unless --prefer HOST names the one that wins. Copies whose settings differ merge
to the strictest: a rate limit of any copy (fewest attempts, longest interval), the smallest
WINDOW_SIZE, DISALLOW_REUSE if any has it. A user the database already has with another secret
is skipped unless --replace; with the same secret it is always skipped (the database's state is
newer: used codes would become valid again).`,
    after: `
Prints one line per user and a summary: imported / merged / skipped / conflicts.
Exit status: 0 done, 1 something was skipped for a conflict or an unusable file (nothing was
written for that user), 2 usage, file or database error.

Examples:
  sudo otpgate db import --store postgres://otpgate@db1/otpgate --dry-run
  sudo otpgate db import --store postgres://otpgate@db1/otpgate --from /root/otp-files --prefer web1`,
  },
  importOptions,
);

function findCopies(values: { from?: string | undefined; file?: string | undefined; user?: string | undefined }): FoundCopies {
  const readAsOwner: OwnedReader = (owner, path) => accountStore(owner, path).peek();
  if (values.from !== undefined) {
    if (values.file !== undefined || values.user !== undefined) throw new UsageError("--from takes no --file or --user (it imports every file under DIR)");
    return collectedCopies(values.from);
  }
  if (values.file !== undefined) {
    if (values.user === undefined) throw new UsageError("--file PATH needs --user NAME (whose file it is)");
    return singleFileCopy(values.file, values.user, readAsOwner);
  }
  const statePath = (user: { name: string; home: string }) => {
    try {
      return statePathOf(user, {});
    } catch {
      return null; // no home directory: no state file
    }
  };
  return thisHostCopies(readAsOwner, statePath, values.user);
}

/** otpgate db import (db-admin.ts exports it as runImport/runExport). */
export async function importCommand(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("db import", argv, importOptions);
  if (values.help) {
    io.out(importHelp);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"; see otpgate db import --help`);
  if (values.prefer !== undefined && values.from === undefined) throw new UsageError("--prefer HOST goes with --from DIR (files from several hosts)");
  const dryRun = values["dry-run"] === true;
  return useFleet("db import", values, async (store) => {
    const found = findCopies(values);
    const existing = new Map<string, string | null>();
    for (const user of new Set(found.copies.map((c) => c.user))) {
      const doc = await store.document(user);
      existing.set(user, doc === null ? null : secretIdentity(doc.text));
    }
    const plan = planImport({ copies: found.copies, failures: found.failures, prefer: values.prefer, replace: values.replace === true, existing });
    const done: ImportStep[] = [];
    for (const step of plan.steps) {
      if (step.kind === "import" && !dryRun) {
        const result = await store.put(step.user, step.text, step.mode);
        if (result === "exists") {
          const late: ImportStep = { kind: "conflict", user: step.user, hosts: step.hosts, reason: "enrolled in the database while this import ran; skipped (--replace overwrites it)" };
          io.out(printable(describeStep(late, false)));
          done.push(late);
          continue;
        }
      }
      io.out(printable(describeStep(step, dryRun)));
      done.push(step);
    }
    const n = countPlan(done);
    const summary = `${n.imported} imported, ${n.merged} merged, ${n.skipped} skipped, ${n.conflicts} conflicts`;
    if (done.length === 0) io.out("no state files found: nothing to import");
    io.out(dryRun ? `dry run (nothing written): ${summary}` : `summary: ${summary}`);
    return n.conflicts > 0 ? 1 : 0;
  });
}
