// otpgate pam: the program pam_exec runs (`auth ... pam_exec.so quiet expose_authtok
// /usr/bin/node .../otpgate.cjs pam [options]`). It reads the typed token from stdin, the user and
// client from PAM_* variables (and sshd's SSH_AUTH_INFO_0 from the PAM environment), decides with
// the login service (services/login.ts, shared with rstudio-helper), logs one line of escaped
// key=value fields to syslog (authpriv, ident otpgate) and exits 0 only when the login is accepted. It prints nothing
// (pam_exec discards it anyway), never waits for more than a few seconds, and never logs a code.

import { ConfigError, type ExitCode } from "../../../core/errors.js";
import { logFields, type LogValue } from "../../../core/log-fields.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { actAs } from "../../../platform/privileges.js";
import { checkUnixPassword } from "../../../platform/unix-password.js";
import { syslog, type SyslogLevel } from "../../../platform/syslog.js";
import { lookupUserById, lookupUserByName } from "../../../platform/users.js";
import { decideLogin, exitCodeOf, logOf, type LoginAccount } from "../../../services/login.js";
import { FileAccountStore } from "../../../stores/file-store.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "../../../stores/secret-path.js";
import { parsePamOptions, type PamOptions } from "../../pam/options.js";
import type { Output } from "../output.js";
import { readStdin } from "../stdin.js";

export const help = `Usage (in a PAM service file):
  auth [success=1 ignore=1 default=ignore] pam_exec.so quiet expose_authtok /usr/bin/node /path/to/otpgate.cjs pam [OPTIONS]
  auth requisite pam_deny.so
  auth required  pam_permit.so

Checks the code typed at pam_exec's "Password: " prompt against the user's
google-authenticator state file. Exit 0 only when accepted. One line per decision goes to
syslog (authpriv, ident "otpgate"). Options, as for pam_google_authenticator.so:
  secret=PATH        state file; ~, \${HOME} and \${USER} are expanded (default ~/.google_authenticator)
  user=NAME          read the file as this account (and require it to own the file)
  nullok             users without a state file are let through (exit 0); with password,
                     only with their password (the whole entry)
  require_publickey  refuse unless sshd reports a completed publickey step (SSH_AUTH_INFO_0):
                     the code is never enough on its own, whatever sshd's methods are
  no_strict_owner    do not check the file's owner
  allowed_perm=0600  permission bits allowed on the file
  noskewadj          do not learn clock skew from far-off codes (otherwise codes up to
                     20 steps off count as evidence, 3 in a row set TIME_SKEW)
  no_increment_hotp  a wrong HOTP code does not advance the counter
  grace_period=SECS  no code needed again from the same PAM_RHOST for SECS after a login
                     (not with password)
  allow_readonly     accept even if the state cannot be saved (DANGEROUS: codes become replayable)
  password           the token is the user's local password immediately followed by the code
                     (split by the account's digit count); both must be right. The password is
                     checked first (unix_chkpwd), the code is used up only when both are right,
                     and every refusal takes at least 1000 ms
  debug              more detail in the log
  log_socket=PATH    syslog socket (default /dev/log)
`;

/** Whole-run limit: pam_exec has no timeout of its own, a hung verifier would hang the login. */
const DEADLINE_MS = 10_000;
const MAX_TOKEN = 511;
/**
 * With `password`, every refusal takes at least this long from the start of the process, so a
 * wrong password (unix_chkpwd) and a wrong code cannot be told apart by timing. Measured work is
 * 0.2-0.45 s under pamtester; 1 s leaves room for a loaded machine (pam_unix itself waits 2 s).
 */
const PASSWORD_REJECT_FLOOR_MS = 1_000;

type Log = (level: SyslogLevel, fields: Record<string, LogValue>) => void;

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.out(help.trimEnd());
    return 0;
  }
  const deadline = setTimeout(() => process.exit(1), DEADLINE_MS);
  deadline.unref();

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
  const openAccount = (name: string): LoginAccount | null => {
    const owner = options.user !== undefined ? (/^[0-9]+$/.test(options.user) ? lookupUserById(Number(options.user)) : lookupUserByName(options.user)) : lookupUserByName(name);
    if (!owner) {
      if (options.user !== undefined) throw new ConfigError(`user=${options.user} not found`);
      return null;
    }
    const path = expandSecretPath(options.secret ?? DEFAULT_SECRET_SPEC, { name, home: options.user !== undefined ? null : owner.home || null });
    location = path;
    const store = new FileAccountStore({ path, owner: { uid: owner.uid, name: owner.name }, strictOwner: options.strictOwner, allowedPerm: options.allowedPerm });
    return { store, location: path, enter: () => actAs(owner.uid, owner.gid) };
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
      factors: {
        password: options.password,
        requirePublickey: options.requirePublickey,
        nullok: options.nullok,
        noSkewAdjust: options.noSkewAdjust,
        noIncrementHotp: options.noIncrementHotp,
        gracePeriodSeconds: options.password ? 0 : options.gracePeriod,
        allowReadonly: options.allowReadonly,
      },
      rejectNotBeforeMs: options.password ? performance.timeOrigin + PASSWORD_REJECT_FLOOR_MS : undefined,
    },
  );
  const { level, fields } = logOf(decision, options.debug);
  log(level, options.debug && location !== undefined ? { ...fields, file: location } : fields);
  return exitCodeOf(decision);
}
