// The options of `otpgate pam`, written like pam_google_authenticator.so's module arguments so a
// PAM line can be moved from one to the other. Unknown or inapplicable options fail closed.

export interface PamOptions {
  readonly secret?: string | undefined;
  readonly user?: string | undefined;
  readonly nullok: boolean;
  readonly strictOwner: boolean;
  readonly allowedPerm: number;
  readonly noSkewAdjust: boolean;
  readonly noIncrementHotp: boolean;
  readonly gracePeriod: number;
  readonly allowReadonly: boolean;
  readonly debug: boolean;
  /** The token is the user's local password immediately followed by the code; both are checked. */
  readonly password: boolean;
  /** Refuse unless sshd reports a completed publickey method (SSH_AUTH_INFO_0 in the PAM env). */
  readonly requirePublickey: boolean;
  /** syslog socket (default /dev/log). */
  readonly logSocket?: string | undefined;
}

export type ParsedPamOptions = { readonly ok: true; readonly options: PamOptions } | { readonly ok: false; readonly error: string };

const INAPPLICABLE: Record<string, string> = {
  forward_pass: "pam_exec cannot hand a password on to the next module",
  use_first_pass: "pam_exec already passes the typed token (expose_authtok)",
  try_first_pass: "pam_exec already passes the typed token (expose_authtok)",
  echo_verification_code: "pam_exec always prompts 'Password: ' without echo",
  "echo-verification-code": "pam_exec always prompts 'Password: ' without echo",
};

/**
 * The module arguments: the table `otpgate pam --help` lists (commands/pam.ts) and parsePamOptions
 * accepts. An entry with `value` is written NAME=VALUE, one without it is a bare word; parsePamOptions
 * handles each name of this table (the compiler checks the switch is exhaustive) and no other.
 */
export const PAM_ARGUMENTS = {
  secret: { type: "string", value: "PATH", help: "state file; ~, ${HOME} and ${USER} are expanded (default ~/.google_authenticator)" },
  user: {
    type: "string",
    value: "NAME",
    help: "read the file as this account (and require it to own the file); needs secret= without ~ or ${HOME}. PAM_USER must still be an existing account (exact name), ${USER} is its name",
  },
  nullok: { type: "boolean", help: "users without a state file are let through (exit 0); with password, only with their password (the whole entry)" },
  require_publickey: {
    type: "boolean",
    help: "refuse unless sshd reports a completed publickey step (SSH_AUTH_INFO_0): the code is never enough on its own, whatever sshd's methods are. Over SSH (SSH_CONNECTION in the PAM environment, or PAM_TTY=ssh) this is enforced even without the option unless `password` is given",
  },
  no_strict_owner: { type: "boolean", help: "do not check the file's owner" },
  allowed_perm: { type: "string", value: "OCTAL", help: "permission bits allowed on the file (default 0600)" },
  noskewadj: { type: "boolean", help: "do not learn clock skew from far-off codes (otherwise codes up to 20 steps off count as evidence, 3 in a row set TIME_SKEW)" },
  no_increment_hotp: { type: "boolean", help: "a wrong HOTP code does not advance the counter" },
  grace_period: { type: "string", value: "SECS", help: "no code needed again from the same PAM_RHOST for SECS after a login (not with password)" },
  allow_readonly: { type: "boolean", help: "accept even if the state cannot be saved (DANGEROUS: codes become replayable)" },
  password: {
    type: "boolean",
    help: "the token is the user's local password immediately followed by the code (split by the account's digit count); both must be right. The password is checked first (unix_chkpwd); a wrong password changes nothing in the state file (not even RATE_LIMIT), the code is used up only when both are right",
  },
  debug: { type: "boolean", help: "more detail in the log" },
  log_socket: { type: "string", value: "PATH", help: "syslog socket (default /dev/log)" },
} as const satisfies Readonly<Record<string, { readonly type: "string" | "boolean"; readonly value?: string; readonly help: string }>>;

type PamArgument = keyof typeof PAM_ARGUMENTS;

const isPamArgument = (name: string): name is PamArgument => Object.hasOwn(PAM_ARGUMENTS, name);

export function parsePamOptions(args: readonly string[]): ParsedPamOptions {
  let o: PamOptions = {
    nullok: false,
    strictOwner: true,
    allowedPerm: 0o600,
    noSkewAdjust: false,
    noIncrementHotp: false,
    gracePeriod: 0,
    allowReadonly: false,
    debug: false,
    password: false,
    requirePublickey: false,
  };
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = eq >= 0 ? arg.slice(eq + 1) : "";
    // NAME=VALUE for the table's entries with a value, the bare word for the others: nothing else.
    if (!isPamArgument(name) || (PAM_ARGUMENTS[name].type === "string") !== eq >= 0) {
      const key = eq >= 0 ? arg.slice(0, eq + 1) : arg;
      const why = INAPPLICABLE[arg] ?? (key === "authtok_prompt=" ? "pam_exec's prompt is always 'Password: ' (put a hint before it with pam_echo)" : undefined);
      return { ok: false, error: why ? `Option "${arg}" cannot work with otpgate pam: ${why}` : `Unrecognized option "${arg}"` };
    }
    switch (name) {
      case "secret":
        o = { ...o, secret: value };
        break;
      case "user":
        if (!value) return { ok: false, error: `Invalid setting "${arg}": user= needs an account name or uid` };
        o = { ...o, user: value };
        break;
      case "allowed_perm": {
        if (!/^[0-7]+$/.test(value) || Number.parseInt(value, 8) === 0) {
          return { ok: false, error: `Invalid permissions in setting "${arg}". allowed_perm setting must be a positive octal integer.` };
        }
        o = { ...o, allowedPerm: Number.parseInt(value, 8) };
        break;
      }
      case "grace_period":
        if (!/^[0-9]+$/.test(value)) return { ok: false, error: `Invalid value in setting "${arg}". grace_period must be a positive number of seconds.` };
        o = { ...o, gracePeriod: Number(value) };
        break;
      case "log_socket":
        o = { ...o, logSocket: value };
        break;
      case "nullok":
        o = { ...o, nullok: true };
        break;
      case "no_strict_owner":
        o = { ...o, strictOwner: false };
        break;
      case "noskewadj":
        o = { ...o, noSkewAdjust: true };
        break;
      case "no_increment_hotp":
        o = { ...o, noIncrementHotp: true };
        break;
      case "allow_readonly":
        o = { ...o, allowReadonly: true };
        break;
      case "debug":
        o = { ...o, debug: true };
        break;
      case "password":
        o = { ...o, password: true };
        break;
      case "require_publickey":
        o = { ...o, requirePublickey: true };
        break;
      default: {
        const unhandled: never = name;
        return { ok: false, error: `Unrecognized option "${String(unhandled)}"` };
      }
    }
  }
  if (o.user !== undefined && o.secret !== undefined && /~|\$\{HOME\}/.test(o.secret)) {
    return { ok: false, error: "secret= cannot use ~ or ${HOME} together with user= (as in pam_google_authenticator); give a path such as /var/lib/otpgate/${USER}" };
  }
  if (o.user !== undefined && o.secret === undefined) {
    return { ok: false, error: "user= needs secret= (a path such as /var/lib/otpgate/${USER})" };
  }
  return { ok: true, options: o };
}
