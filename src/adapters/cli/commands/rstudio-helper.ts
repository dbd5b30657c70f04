// otpgate rstudio-helper: set as RStudio Server's auth-pam-helper-path (by setup rstudio
// --factors password+code). rserver runs it as root with `USER SERVICE REQUIRE_PROMPT` and the
// password box's content on stdin; the content is the password immediately followed by the code.
// The decision is the login service's (services/login.ts, shared with `otpgate pam`): the password
// goes FIRST to RStudio's own rserver-pam with the same arguments, then the code is decided, and
// used up only when both are right; every refusal takes the same time. With --nullok a user who
// is not enrolled must type the password alone (the whole entry). Exit 0 only when accepted.

import { spawn } from "node:child_process";
import type * as Tty from "node:tty";
import type { ExitCode } from "../../../core/errors.js";
import { logFields, type LogValue } from "../../../core/log-fields.js";
import { builtin } from "../../../platform/builtin.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { syslog, type SyslogLevel } from "../../../platform/syslog.js";
import { decideLogin, exitCodeOf, logOf } from "../../../services/login.js";
import { fileAccounts } from "../../../stores/file-accounts.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { readStdin } from "../stdin.js";

export const options = {
  "rserver-pam": { type: "string", value: "PATH", help: "RStudio's own rserver-pam: checks the password (required)" },
  secret: { type: "string", value: "PATTERN", help: "path pattern of the state files (default ~/.google_authenticator; ~, ${HOME} and ${USER} are expanded)" },
  nullok: { type: "boolean", help: "a user who is not enrolled may sign in with the password alone (typed as the whole entry)" },
  noskewadj: { type: "boolean", help: "do not learn clock skew from far-off codes (as pam_google_authenticator's noskewadj; setup passes it by default)" },
  "log-socket": { type: "string", value: "PATH", help: "the syslog socket for its log line (default /dev/log)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "rstudio-helper",
  {
    usage: ["--rserver-pam PATH [--secret PATTERN] [--nullok] [--noskewadj] [--log-socket PATH] -- USER SERVICE REQUIRE"],
    about: `
RStudio Server's PAM helper for "password + code in one field": written by
otpgate setup rstudio --factors password+code. Not meant to be run by hand.`,
  },
  options,
);

/** rserver-pam reads at most 200 bytes. */
const MAX_INPUT = 200;
/**
 * Every refusal takes at least this long from the start of the process. A wrong password makes
 * pam_unix (inside rserver-pam) wait 2 s ±25 % (up to 2.5 s) before it answers, a right one does
 * not; with RStudio's start-up around it a wrong password took up to ~2.9 s and a wrong code
 * ~0.8 s. 3.5 s covers the slowest wrong password, so both are refused after the same time.
 */
const REJECT_FLOOR_MS = 3_500;

/** rserver-pam USER SERVICE REQUIRE with the password on stdin, as root; true on exit 0. */
function rserverPam(path: string, args: string[], password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(path, args, { stdio: ["pipe", "ignore", "ignore"], timeout: 15_000 });
    child.on("error", () => resolve(false));
    child.on("close", (code) => resolve(code === 0));
    child.stdin.on("error", () => {});
    child.stdin.end(Buffer.from(password, "latin1"));
  });
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("rstudio-helper", argv, options);
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  const deadline = setTimeout(() => process.exit(1), 20_000);
  deadline.unref();
  const [user, service = "rstudio", require = "1"] = positionals;
  const log = (level: SyslogLevel, fields: Record<string, LogValue>) => syslog(level, logFields({ user: user ?? null, service, helper: "rstudio", ...fields }), { socket: values["log-socket"] });
  const rserverPamPath = values["rserver-pam"];
  if (!rserverPamPath || !user || positionals.length > 3) {
    log("err", { result: "error", reason: "usage" });
    return 2;
  }
  // Like rserver-pam: never read a password from a terminal.
  if (builtin<typeof Tty>("node:tty").isatty(0)) return 1;
  const raw = await readStdin(MAX_INPUT + 1, 10_000);
  if (raw.length > MAX_INPUT) {
    log("notice", { result: "rejected", reason: "oversized-input" });
    return 1;
  }
  const entry = raw.toString("latin1");
  raw.fill(0);
  const decision = await decideLogin(
    {
      // The state file is handled with the user's rights (the store switches for each of its file
      // sections); rserver-pam runs as root.
      openAccount: (name) => fileAccounts({ secret: values.secret }).open(name),
      checkPassword: (name, password) => rserverPam(rserverPamPath, [name, service, require], password),
      clock: systemClock,
      macFactory: nodeMacFactory,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
    {
      user,
      token: entry,
      service,
      factors: {
        password: true,
        requirePublickey: false,
        nullok: values.nullok === true,
        noSkewAdjust: values.noskewadj === true,
        noIncrementHotp: false,
        gracePeriodSeconds: 0,
        allowReadonly: false,
      },
      rejectNotBeforeMs: performance.timeOrigin + REJECT_FLOOR_MS,
    },
  );
  const { level, fields } = logOf(decision, false);
  log(level, fields);
  return exitCodeOf(decision);
}
