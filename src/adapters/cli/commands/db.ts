// otpgate db: the fleet database's administration (issue 11): schema migrations, key rotation, the
// audit table. This module only parses and prints --help; the work runs in dist/otpgate-fleet.cjs
// (db-main.ts through fleet-main.ts), so node-postgres is never parsed by other commands.

import { UsageError, type ExitCode } from "../../../core/errors.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { STORE_OPTIONS } from "../store-options.js";

export const options = {
  ...STORE_OPTIONS,
  "create-key-file": { type: "boolean", group: "migrate:", help: "create the key file (--db-key-file) with one new key if it does not exist (mode 0600, owner root)" },
  add: { type: "boolean", group: "rotate-key:", help: "append a new key to the key file (it becomes the one that encrypts); copy the file to every host before re-encrypting" },
  retire: { type: "boolean", group: "rotate-key:", help: "remove from the key file every key that no account or emergency code uses any more" },
  user: { type: "string", value: "NAME", group: "audit:", help: "only this user's records" },
  since: { type: "string", value: "WHEN", group: "audit:", help: "only records since WHEN: 30m, 1h, 2d (ago) or an ISO time (2026-05-01T08:00Z)" },
  limit: { type: "string", value: "N", group: "audit:", help: "at most N records, newest first (default 1000)" },
  json: { type: "boolean", group: "audit:", help: "one JSON object per line" },
  prune: { type: "boolean", group: "audit:", help: "delete the records older than --retention-days" },
  "retention-days": { type: "string", value: "N", group: "audit:", help: "how long audit records are kept (default 90)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "db",
  {
    usage: [
      "migrate --store URL [--create-key-file] [--db-key-file FILE] [--db-password-file FILE]",
      "rotate-key --store URL --add | --retire [--db-key-file FILE]",
      "rotate-key --store URL [--db-key-file FILE] [--db-password-file FILE]",
      "audit --store URL [--user NAME] [--since WHEN] [--limit N] [--json] [--prune [--retention-days N]]",
      "import --store URL ...          (otpgate db import --help)",
      "export USER --store URL ...     (otpgate db export --help)",
    ],
    about: `
The fleet database (PostgreSQL), shared by the otpgate server of every host:
- migrate: create or upgrade the tables (safe to run from several hosts at once; a database
  newer than this otpgate is refused). With --create-key-file, first create the key file that
  encrypts the secrets at rest: copy it unchanged to every host (mode 0600, owner root).
- rotate-key: a new key in two steps, so no host ever meets a key it lacks. First
  rotate-key --add on one host, and copy the key file to every host; then rotate-key re-encrypts
  every secret under the new key, row by row, while logins go on. rotate-key --retire then drops
  the keys nothing uses any more (emergency codes keep the key they were made under until the
  user gets new ones with otpgate codes --regenerate); copy the file to every host again.
- audit: one line per login decision (time, user, host, service, client address, result,
  reason); never a code or secret.
- import: google-authenticator state files (this host's, or collected from several hosts)
  into the database, used codes and emergency codes kept; see otpgate db import --help.
- export: one account as a state file pam_google_authenticator.so accepts, for a host that
  leaves the fleet; see otpgate db export --help.`,
    after: `
Exit status: 0 done, 1 refused (not in the database, a conflict), 2 usage or configuration error,
the database cannot be reached included (the same for every command with --store).

Examples:
  sudo otpgate db migrate --store 'postgres://otpgate@db.example.org/otpgate?sslmode=verify-full&sslrootcert=/etc/otpgate/db-ca.crt' --create-key-file
  sudo otpgate db audit --store URL --user alice --since 2d`,
  },
  options,
);

export const SUBCOMMANDS = ["migrate", "rotate-key", "audit"] as const;

/** Subcommands with option tables of their own (db-import.ts, db-export.ts: `otpgate db import --help`). */
export const OWN_TABLE_SUBCOMMANDS = ["import", "export"] as const;

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const own = OWN_TABLE_SUBCOMMANDS.find((s) => s === argv[0]);
  if (own !== undefined) {
    const { dispatch } = await import("./fleet-main.js");
    return dispatch(`db ${own}`, argv.slice(1), io);
  }
  const { values, positionals } = parse("db", argv, options);
  if (values.help) {
    io.out(help);
    return 0;
  }
  const sub = positionals[0];
  if (sub === undefined || !(SUBCOMMANDS as readonly string[]).includes(sub) || positionals.length > 1) {
    throw new UsageError(`give one of ${[...SUBCOMMANDS, ...OWN_TABLE_SUBCOMMANDS].join(", ")}${sub === undefined ? "" : ` (not ${JSON.stringify(positionals.join(" "))})`}; see otpgate db --help`);
  }
  const { dispatch } = await import("./fleet-main.js");
  return dispatch("db", argv, io);
}
