// otpgate pam: the program pam_exec runs (`auth ... pam_exec.so quiet expose_authtok
// /usr/bin/node .../otpgate.cjs pam [options]`). It reads the typed token from stdin, the user and
// client from PAM_* variables (and sshd's SSH_AUTH_INFO_0 from the PAM environment), decides with
// the login service (services/login.ts, shared with rstudio-helper), logs one line of escaped
// key=value fields to syslog (authpriv, ident otpgate) and exits 0 only when the login is accepted. It prints nothing
// (pam_exec discards it anyway), never waits for more than a few seconds, and never logs a code.

import type { ExitCode } from "../../../core/errors.js";
import { logFields, type LogValue } from "../../../core/log-fields.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { checkUnixPassword } from "../../../platform/unix-password.js";
import { syslog, type SyslogLevel } from "../../../platform/syslog.js";
import { decideLogin, exitCodeOf, logOf, type LoginAccount } from "../../../services/login.js";
import { fileAccounts } from "../../../stores/file-accounts.js";
import { PAM_ARGUMENTS, parsePamOptions, type PamOptions } from "../../pam/options.js";
import { optionLines, type OptionSpec } from "../help.js";
import type { Output } from "../output.js";
import { readStdin } from "../stdin.js";

/** A module argument as written on the PAM line: NAME=VALUE or the bare NAME. */
export const pamArgumentSignature = (name: string, spec: OptionSpec): string => (spec.type === "string" ? `${name}=${spec.value ?? "VALUE"}` : name);

/** The module arguments (adapters/pam/options.ts, the table parsePamOptions accepts) under their heading. */
export const moduleArguments = Object.fromEntries(Object.entries(PAM_ARGUMENTS).map(([name, spec]) => [name, { ...spec, group: "Options, as for pam_google_authenticator.so:" }]));

export const help = [
  `Usage (in a PAM service file):
  auth [success=1 ignore=1 default=ignore] pam_exec.so quiet expose_authtok /usr/bin/node /path/to/otpgate.cjs pam [OPTIONS]
  auth requisite pam_deny.so
  auth required  pam_permit.so`,
  `Checks the code typed at pam_exec's "Password: " prompt against the user's
google-authenticator state file. Exit 0 only when accepted. One line per decision goes to
syslog (authpriv, ident "otpgate"). Every refusal takes at least 1000 ms from the start
of the process, whatever its reason.`,
  optionLines(moduleArguments, pamArgumentSignature).join("\n"),
  "otpgate pam -h (or --help) prints this help.",
].join("\n\n");

/** Whole-run limit: pam_exec has no timeout of its own, a hung verifier would hang the login. */
const DEADLINE_MS = 10_000;
const MAX_TOKEN = 511;
/**
 * Every refusal (exit 1 or 2, whatever the reason and the options) takes at least this long from
 * the start of the process, so timing tells nothing: not which factor was wrong (a wrong password
 * through unix_chkpwd vs a wrong code), and not which accounts exist or are enrolled (an unknown
 * name costs a `getent` process; RStudio's code sign-in is reachable from the web). It is also
 * what bounds password guessing through `password` mode, since a wrong password changes no state
 * (services/login.ts, rule 4). Measured under pamtester, process start included (pamtester's own
 * time too): slowest refusal, an unknown user, median 386 ms, max 633 ms on a loaded machine;
 * unix_chkpwd 0.2-0.45 s. 1 s is above the slowest path with room for load, and well under
 * pam_unix's own 2 s failure delay. Accepted logins are not delayed.
 */
const REJECT_FLOOR_MS = 1_000;

type Log = (level: SyslogLevel, fields: Record<string, LogValue>) => void;

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.out(help.trimEnd());
    return 0;
  }
  const deadline = setTimeout(() => process.exit(1), DEADLINE_MS);
  deadline.unref();
  const code = await attempt(argv);
  if (code !== 0) {
    // One floor for every refusal (see REJECT_FLOOR_MS).
    const wait = REJECT_FLOOR_MS - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  return code;
}

async function attempt(argv: string[]): Promise<ExitCode> {
  const env = process.env;
  const user = env.PAM_USER ?? "";
  const context = { user: user || null, service: env.PAM_SERVICE ?? null, rhost: env.PAM_RHOST ?? null };
  const parsed = parsePamOptions(argv);
  // Even a broken option list is logged where the admin asked for logs.
  const logSocket = argv.find((a) => a.startsWith("log_socket="))?.slice("log_socket=".length);
  const log: Log = (level, fields) => syslog(level, logFields({ ...context, ...fields }), { socket: logSocket });

  if (!parsed.ok) {
    log("err", { result: "error", reason: "config", problem: parsed.error });
    return 2;
  }
  const options = parsed.options;
  if (env.PAM_TYPE !== "auth") {
    log("err", { result: "error", reason: "config", problem: `otpgate pam only handles PAM_TYPE=auth, not ${env.PAM_TYPE ?? "(unset)"}` });
    return 2;
  }
  if (!user) {
    log("err", { result: "error", reason: "no-user", problem: "PAM_USER is not set" });
    return 2;
  }
  const raw = await readStdin(MAX_TOKEN + 1, 5_000).catch(() => null);
  if (raw === null) {
    log("notice", { result: "rejected", reason: "no-input" });
    return 1;
  }
  const token = raw.toString("latin1").replace(/\r?\n$/, "");
  const oversized = raw.length > MAX_TOKEN;
  raw.fill(0);
  if (oversized) {
    log("notice", { result: "rejected", reason: "oversized-input" });
    return 1;
  }
  return decide(options, user, token, log);
}

async function decide(options: PamOptions, user: string, token: string, log: Log): Promise<ExitCode> {
  let location: string | undefined;
  // PAM_USER is always an existing account, by its exact name, also with user= (where the
  // reference never looks it up): a name that is no account ("ZZ", "u ", "a b") is refused rather
  // than mapped to a file that does not exist and let through by nullok. ${USER} is expanded from
  // the account's own name. The store switches to the file owner for each of its file sections.
  const accounts = fileAccounts({ secret: options.secret, strictOwner: options.strictOwner, allowedPerm: options.allowedPerm, fileOwner: options.user });
  const openAccount = (name: string): LoginAccount | null => {
    const account = accounts.open(name);
    location = account?.location;
    return account;
  };
  const decision = await decideLogin(
    {
      openAccount,
      checkPassword: async (name, password) => checkUnixPassword(name, password),
      clock: systemClock,
      macFactory: nodeMacFactory,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
    {
      user,
      token,
      service: process.env.PAM_SERVICE ?? "",
      rhost: process.env.PAM_RHOST,
      sshAuthInfo: process.env.SSH_AUTH_INFO_0,
      // sshd puts SSH_CONNECTION into the PAM environment and sets PAM_TTY to "ssh" (auth-pam.c);
      // pam_exec hands both to us. Either one means: a code-only decision needs the key.
      sshCaller: process.env.SSH_CONNECTION !== undefined || process.env.PAM_TTY === "ssh",
      factors: {
        password: options.password,
        requirePublickey: options.requirePublickey,
        nullok: options.nullok,
        noSkewAdjust: options.noSkewAdjust,
        noIncrementHotp: options.noIncrementHotp,
        gracePeriodSeconds: options.password ? 0 : options.gracePeriod,
        allowReadonly: options.allowReadonly,
      },
    },
  );
  const { level, fields } = logOf(decision, options.debug);
  log(level, options.debug && location !== undefined ? { ...fields, file: location } : fields);
  return exitCodeOf(decision);
}
