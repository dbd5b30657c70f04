// otpgate verify: check one code against a state file, update its bookkeeping, report the outcome.
// The decision is the login decision (services/login.ts decideLogin), code only, with its reasons.

import { writeSync } from "node:fs";
import type * as Tty from "node:tty";
import { ENROLL_HINT, UsageError, type ExitCode } from "../../../core/errors.js";
import { printable, printableJson } from "../../../core/printable.js";
import type { LogValue } from "../../../core/log-fields.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { builtin } from "../../../platform/builtin.js";
import { decideLogin, type LoginDecision, type LoginReason } from "../../../services/login.js";
import { resolveTarget } from "../../../stores/resolve-account.js";
import { accountStore } from "../../../stores/file-accounts.js";
import { ACCOUNT_OPTIONS } from "./account-options.js";
import { parse, parseOctal } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { readStdin } from "../stdin.js";

export const options = {
  ...ACCOUNT_OPTIONS,
  json: { type: "boolean", help: "print the outcome as one JSON object on stdout" },
  "no-skew-adjust": { type: "boolean", help: "do not learn clock skew from far-off codes (PAM noskewadj)" },
  "no-increment-hotp": { type: "boolean", help: "a wrong HOTP code does not advance the counter" },
  "no-strict-owner": { type: "boolean", help: "do not require the file to be owned by the user" },
  "allowed-perm": { type: "string", value: "OCTAL", help: "permission bits allowed on the file (default 0600)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "verify",
  {
    usage: ["[-s FILE | --user NAME] [options] [CODE]"],
    about: `
Check a one-time code (6 digits, or an 8-digit emergency code) against a
google-authenticator state file and update its bookkeeping (used codes, rate-limit
stamps, HOTP counter, emergency codes), exactly like pam_google_authenticator.
The code comes from the argument or, if there is none, from standard input.`,
    after: `
Exit status: 0 accepted, 1 rejected (wrong, replayed, rate-limited, not enrolled),
2 error (usage, unreadable or invalid state file).

Examples:
  otpgate verify 123456
  echo 123456 | otpgate verify --user alice --json`,
  },
  options,
);

const CODE_SHAPE = /^[0-9]{6,8}$/;

async function readCode(positionals: string[]): Promise<string> {
  if (positionals.length > 1) throw new UsageError("give at most one code; see otpgate verify --help");
  if (positionals.length === 1) return positionals[0]!;
  const tty = builtin<typeof Tty>("node:tty").isatty(0);
  if (tty) writeSync(2, "Verification code: ");
  const raw = (await readStdin(512, tty ? 120_000 : 10_000)).toString("latin1");
  if (raw.length > 512) throw new UsageError("standard input is longer than any code; give only the code");
  return raw.replace(/\r?\n$/, "");
}

function describeShape(code: string): string {
  if (code === "") return "no code given: pass it as an argument or on standard input";
  if (!/^[0-9]*$/.test(code)) return "the code must contain digits only";
  return `the code has ${code.length} digits; expected 6 (or 7-8 if enrolled so) or an 8-digit emergency code`;
}

interface Report {
  readonly exit: ExitCode;
  readonly message: string;
  readonly json: Record<string, string | number | boolean>;
}

const num = (v: LogValue): number => (typeof v === "number" ? v : 0);

function acceptedMessage(via: string, d: Readonly<Record<string, LogValue>>): string {
  switch (via) {
    case "totp":
      return `accepted: time-based code (step ${num(d.step)}, offset ${num(d.offset)})`;
    case "totp-skew-reset":
      return `accepted: time-based code; the clock skew of ${num(d.skew)} steps is now learned`;
    case "hotp":
      return `accepted: counter-based code (counter ${num(d.counter)})`;
    case "scratch":
      return `accepted: emergency code, now used up (${num(d.remaining)} left)`;
    default:
      return `accepted (${via})`;
  }
}

/** The user's words for the login decision's reasons (the reasons themselves are services/login.ts's). */
const REJECTED: Partial<Record<LoginReason, string>> = {
  wrong: "rejected: wrong code; if correct codes keep failing, check the clock of this server and of the phone",
  malformed: "rejected: the code does not have the number of digits this account uses",
  replay: "rejected: this code was already used; wait for the next one",
  "rate-limited": "rejected: too many attempts within the RATE_LIMIT interval; wait and try again",
  "skew-pending": "rejected: the code fits a clock far off from this server's; enter the next codes as they appear to let otpgate learn the skew, or fix the clock",
  "no-otp": `rejected: the state file has no TOTP_AUTH or HOTP_COUNTER line, so only emergency codes work; ${ENROLL_HINT}`,
  conflict: "rejected: the state file kept changing during the check (another login at the same moment); try again",
};

function report(decision: LoginDecision, path: string, user: string): Report {
  const base = { file: path, user };
  if (decision.outcome === "accepted") {
    const numbers = Object.fromEntries(Object.entries(decision.detail).filter((e): e is [string, number] => typeof e[1] === "number"));
    return { exit: 0, message: acceptedMessage(decision.via, decision.detail), json: { result: "accepted", via: decision.via, ...base, ...numbers } };
  }
  const { reason, detail } = decision;
  const problem = typeof detail.problem === "string" ? detail.problem : "";
  if (decision.outcome === "rejected") {
    const message = reason === "not-enrolled" ? `rejected: ${user} is not enrolled (no ${path}); ${ENROLL_HINT}` : (REJECTED[reason] ?? `rejected: ${reason}`);
    return { exit: 1, message, json: { result: "rejected", reason, ...base } };
  }
  if (reason === "invalid-state") {
    return {
      exit: 2,
      message: `error: ${path}: ${problem}; fix that line or ${ENROLL_HINT}`,
      json: { result: "error", reason, setting: String(detail.setting ?? ""), problem, ...base },
    };
  }
  const message = reason === "internal" ? `otpgate verify: internal error: ${problem}; please report it` : `otpgate verify: ${problem}`;
  return { exit: 2, message, json: { result: "error", reason, problem, ...base } };
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("verify", argv, options);
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  const allowedPerm = values["allowed-perm"] === undefined ? 0o600 : parseOctal("--allowed-perm", values["allowed-perm"]);
  const code = await readCode(positionals);
  if (!CODE_SHAPE.test(code)) throw new UsageError(describeShape(code));

  const euid = process.geteuid?.() ?? 0;
  const target = resolveTarget({ user: values.user, secret: values.secret, euid, cwd: process.cwd() });
  // The store acts as the file's owner for each of its file sections (stores/file-accounts.ts).
  const store = accountStore(target.user, target.path, { strictOwner: !values["no-strict-owner"], allowedPerm });
  const decision = await decideLogin(
    {
      openAccount: () => ({ store, location: target.path }),
      checkPassword: async () => false, // no password factor here
      clock: systemClock,
      macFactory: nodeMacFactory,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
    {
      user: target.user.name,
      token: code,
      service: "otpgate-verify",
      factors: {
        password: false,
        requirePublickey: false,
        nullok: false,
        noSkewAdjust: values["no-skew-adjust"] === true,
        noIncrementHotp: values["no-increment-hotp"] === true,
        gracePeriodSeconds: 0,
        allowReadonly: false,
      },
    },
  );
  const r = report(decision, target.path, target.user.name);
  if (values.json)
    io.out(printableJson(r.json)); // the message may quote the state file: escaped
  else io.err(printable(r.message));
  return r.exit;
}
