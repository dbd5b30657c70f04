// otpgate pam: the program pam_exec runs (`auth ... pam_exec.so quiet expose_authtok
// /usr/bin/node .../otpgate.cjs pam [options]`). It reads the typed token from stdin, the user and
// client from PAM_* variables, decides with the same service as `otpgate verify`, logs one line to
// syslog (authpriv, ident otpgate) and exits 0 only when the login is accepted. It prints nothing
// (pam_exec discards it anyway), never waits for more than a few seconds, and never logs a code.

import type { ExitCode } from "../../../core/errors.js";
import { OtpgateError } from "../../../core/errors.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { actAs } from "../../../platform/privileges.js";
import { checkUnixPassword } from "../../../platform/unix-password.js";
import { syslog } from "../../../platform/syslog.js";
import { lookupUserById, lookupUserByName } from "../../../platform/users.js";
import { authenticateWith, type AuthOutcome } from "../../../services/authenticate.js";
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
  nullok             users without a state file are let through (exit 0)
  no_strict_owner    do not check the file's owner
  allowed_perm=0600  permission bits allowed on the file
  noskewadj          do not learn clock skew from far-off codes
  no_increment_hotp  a wrong HOTP code does not advance the counter
  grace_period=SECS  no code needed again from the same PAM_RHOST for SECS after a login
  allow_readonly     accept even if the state cannot be saved (DANGEROUS: codes become replayable)
  password           the token is the user's local password immediately followed by the code;
                     both must be right (the password is checked with unix_chkpwd)
  debug              more detail in the log
  log_socket=PATH    syslog socket (default /dev/log)
`;

/** Whole-run limit: pam_exec has no timeout of its own, a hung verifier would hang the login. */
const DEADLINE_MS = 10_000;
const MAX_TOKEN = 511;

function describe(outcome: AuthOutcome): string {
  switch (outcome.kind) {
    case "accepted":
      return `result=accepted via=${outcome.via}`;
    case "rejected":
      return `result=rejected reason=${outcome.reason}`;
    case "not-enrolled":
      return "result=rejected reason=not-enrolled";
    case "invalid-state":
      return `result=error reason=invalid-state setting=${outcome.setting} problem="${outcome.problem}"`;
  }
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.out(help.trimEnd());
    return 0;
  }
  const deadline = setTimeout(() => process.exit(1), DEADLINE_MS);
  deadline.unref();

  const env = process.env;
  const user = env.PAM_USER ?? "";
  const context = `user=${user || "-"} service=${env.PAM_SERVICE ?? "-"} rhost=${env.PAM_RHOST ?? "-"}`;
  const parsed = parsePamOptions(argv);
  // Even a broken option list is logged where the admin asked for logs.
  const logSocket = argv.find((a) => a.startsWith("log_socket="))?.slice("log_socket=".length);
  const log = (level: "info" | "notice" | "warning" | "err", message: string) => syslog(level, `${context} ${message}`, { socket: logSocket });

  if (!parsed.ok) {
    log("err", `result=error reason=config ${parsed.error}`);
    return 2;
  }
  const options = parsed.options;
  if (env.PAM_TYPE !== "auth") {
    log("err", `result=error reason=config otpgate pam only handles PAM_TYPE=auth, not ${env.PAM_TYPE ?? "(unset)"}`);
    return 2;
  }
  if (!user) {
    log("err", "result=error reason=no-user PAM_USER is not set");
    return 2;
  }
  try {
    return await decide(options, user, log);
  } catch (err) {
    log("err", `result=error reason=${err instanceof OtpgateError ? err.name : "internal"} ${(err as Error).message}`);
    return 2;
  }
}

async function decide(options: PamOptions, user: string, log: (level: "info" | "notice" | "warning" | "err", message: string) => void): Promise<ExitCode> {
  const raw = await readStdin(MAX_TOKEN + 1, 5_000);
  const token = raw.toString("latin1").replace(/\r?\n$/, "");
  raw.fill(0);

  const owner = options.user !== undefined ? (/^[0-9]+$/.test(options.user) ? lookupUserById(Number(options.user)) : lookupUserByName(options.user)) : lookupUserByName(user);
  if (!owner) {
    log("notice", options.user !== undefined ? `result=error reason=config user=${options.user} not found` : "result=rejected reason=unknown-user");
    return options.user !== undefined ? 2 : 1;
  }
  const path = expandSecretPath(options.secret ?? DEFAULT_SECRET_SPEC, { name: user, home: options.user !== undefined ? null : owner.home || null });
  actAs(owner.uid, owner.gid);
  const store = new FileAccountStore({ path, owner: { uid: owner.uid, name: owner.name }, strictOwner: options.strictOwner, allowedPerm: options.allowedPerm });
  if (raw.length > MAX_TOKEN) {
    log("notice", "result=rejected reason=oversized-input");
    return 1;
  }
  const rhost = process.env.PAM_RHOST;
  const result = await authenticateWith(
    { store, clock: systemClock, macFactory: nodeMacFactory },
    token,
    { noSkewAdjust: options.noSkewAdjust, noIncrementHotp: options.noIncrementHotp, allowPrefix: options.password, recordSkewResetCode: true },
    { grace: options.gracePeriod > 0 && rhost !== undefined ? { rhost, seconds: options.gracePeriod } : undefined, allowReadonly: options.allowReadonly },
  );
  const outcome = result.outcome;
  if (options.password && outcome.kind === "accepted" && !checkUnixPassword(user, outcome.prefix)) {
    log("notice", "result=rejected reason=password (the code was right, the password part was not)");
    return 1;
  }
  if (outcome.kind === "not-enrolled" && options.nullok) {
    log("info", `result=accepted via=nullok (no ${path})`);
    return 0;
  }
  const detail = options.debug ? ` file=${path}${outcome.kind === "accepted" && outcome.via === "totp" ? ` step=${outcome.step}` : ""}` : "";
  if (result.unsaved) log("warning", `allow_readonly: accepted although the state was not saved: ${result.unsaved}`);
  log(outcome.kind === "accepted" ? "info" : outcome.kind === "invalid-state" ? "err" : "notice", describe(outcome) + detail);
  return outcome.kind === "accepted" ? 0 : outcome.kind === "invalid-state" ? 2 : 1;
}
