// otpgate status: what an account's state file says, never the secret or a code.

import type { ExitCode } from "../../../core/errors.js";
import { UsageError } from "../../../core/errors.js";
import { printable, printableJson } from "../../../core/printable.js";
import { systemClock } from "../../../platform/clock.js";
import { allUsers } from "../../../platform/users.js";
import { accountStatus, type AccountStatus } from "../../../admin/account-status.js";
import { accountStore } from "../../../stores/file-accounts.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "../../../stores/secret-path.js";
import { ACCOUNT_OPTIONS, openAccount } from "./account-options.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { STORE_OPTIONS } from "../store-options.js";
import { handOverToFleet, wantsFleet } from "../fleet-handover.js";

export const options = {
  ...ACCOUNT_OPTIONS,
  all: { type: "boolean", help: "every account with a state file (root only), one line each; -s gives the path pattern, e.g. /var/lib/otp/${USER}" },
  json: { type: "boolean", help: "JSON on stdout" },
  ...STORE_OPTIONS,
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "status",
  {
    usage: ["[-s FILE | --user NAME] [--json]", "--all [-s PATTERN] [--json]      (root)", "(--user NAME | --all) --store URL [--json]   (root: the fleet database)"],
    about: `
Show whether an account is enrolled and how: time- or counter-based, window, rate limit,
reuse policy, emergency codes left, when a code was last accepted, whether the account is
rate-limited right now. Never shows the secret or any code. With --store: the accounts in
the fleet database instead of the state files.`,
    after: `
Exit status: 0 enrolled and usable, 1 not enrolled, 2 the state file is unusable (the
message says why). With --all: 0, or 2 when some file is unusable.

Examples:
  otpgate status
  sudo otpgate status --user alice --json
  sudo otpgate status --all`,
  },
  options,
);

const time = (s: number) =>
  new Date(s * 1000)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");

/** The lines of one account (status --user). */
export function describe(s: AccountStatus): string[] {
  if (!s.enrolled) return [`${s.user}: not enrolled (no ${s.file})`];
  if (s.error) return [`${s.user}: state file unusable: ${s.error}`];
  const kind =
    s.mode === "totp"
      ? `time-based (${s.algorithm}, ${s.digits} digits, ${s.stepSeconds} s steps)`
      : s.mode === "hotp"
        ? `counter-based (${s.algorithm}, ${s.digits} digits, next counter ${s.hotpCounter})`
        : "no TOTP_AUTH or HOTP_COUNTER line: only emergency codes work";
  const w = s.windowSize!;
  const window = s.mode === "hotp" ? `${w} codes ahead` : `${w} codes (${-Math.floor((w - 1) / 2)}..+${Math.floor(w / 2)} steps)`;
  const rate = s.rateLimit
    ? `${s.rateLimit.attempts} attempts per ${s.rateLimit.intervalSeconds} s; ${s.rateLimitedNow ? "RATE-LIMITED now" : "not limited now"} (${s.recentAttempts} recent attempt${s.recentAttempts === 1 ? "" : "s"})`
    : "none";
  return [
    `${s.user}: enrolled, ${kind}`,
    s.fileMode === undefined ? `  stored in:       ${s.file}` : `  file:            ${s.file} (mode ${s.fileMode})`,
    `  window:          ${window}`,
    `  code reuse:      ${s.mode === "hotp" ? "not applicable (counter-based)" : s.disallowReuse ? "refused" : "allowed within the window"}`,
    `  rate limit:      ${rate}`,
    `  emergency codes: ${s.emergencyCodesLeft} left`,
    `  last accepted:   ${s.lastAcceptedAt ? time(s.lastAcceptedAt) : s.disallowReuse ? "never" : "not recorded (reuse is allowed)"}`,
    `  clock skew:      ${s.timeSkewSteps ? `${s.timeSkewSteps} steps learned` : "none learned"}`,
    `  problems:        ${s.problems?.length ? s.problems.join("; ") : "none"}`,
  ];
}

/** One line per account (status --all). */
export function oneLine(s: AccountStatus): string {
  if (s.error) return `${s.user.padEnd(16)} UNUSABLE  ${s.error}`;
  const parts = [
    s.mode === "totp" ? "totp" : s.mode === "hotp" ? "hotp" : "codes-only",
    `window ${s.windowSize}`,
    s.mode === "totp" ? (s.disallowReuse ? "reuse off" : "reuse on") : "",
    s.rateLimit ? `rate ${s.rateLimit.attempts}/${s.rateLimit.intervalSeconds}s${s.rateLimitedNow ? " LIMITED" : ""}` : "no rate limit",
    `${s.emergencyCodesLeft} codes`,
    s.lastAcceptedAt ? `last ${time(s.lastAcceptedAt)}` : "",
    s.problems?.length ? `PROBLEMS: ${s.problems.join("; ")}` : "",
  ].filter(Boolean);
  return `${s.user.padEnd(16)} ${parts.join("  ")}`;
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("status", argv, options);
  if (values.help) {
    io.out(help);
    return 0;
  }
  if (wantsFleet(values)) return handOverToFleet("status", argv, io);
  const now = systemClock.nowMs();
  if (values.all) {
    if (values.user !== undefined) throw new UsageError("--all and --user cannot be combined");
    const euid = process.geteuid?.() ?? 0;
    if (euid !== 0) throw new UsageError("--all reads every user's state file: run it as root");
    const pattern = values.secret ?? DEFAULT_SECRET_SPEC;
    if (!/~|\$\{HOME\}|\$\{USER\}/.test(pattern)) throw new UsageError(`with --all, -s must be a pattern with ~, \${HOME} or \${USER} (one file per user), not "${pattern}"`);
    const rows: AccountStatus[] = [];
    for (const user of allUsers()) {
      let path: string;
      try {
        path = expandSecretPath(pattern, { name: user.name, home: user.home || null });
      } catch {
        continue;
      }
      // One account's problem is its row; it never stops the report on everyone else.
      let s: AccountStatus;
      try {
        const store = accountStore(user, path);
        s = accountStatus(store, user.name, now);
      } catch (err) {
        s = { user: user.name, file: path, enrolled: true, error: `cannot check ${path}: ${(err as Error).message}` };
      }
      if (s.enrolled) rows.push(s);
    }
    if (values.json) io.out(printableJson(rows));
    else if (rows.length === 0) io.out("no enrolled accounts found");
    else for (const r of rows) io.out(printable(oneLine(r)));
    return rows.some((r) => r.error) ? 2 : 0;
  }
  const account = openAccount(values);
  const s = accountStatus(account.store, account.user.name, now);
  // User names, paths and the file's own values can carry terminal escapes: printed escaped.
  if (values.json) io.out(printableJson(s));
  else for (const line of describe(s)) io.out(printable(line));
  return !s.enrolled ? 1 : s.error || s.problems?.length ? 2 : 0;
}
