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

export function parsePamOptions(args: readonly string[]): ParsedPamOptions {
  let o: PamOptions = { nullok: false, strictOwner: true, allowedPerm: 0o600, noSkewAdjust: false, noIncrementHotp: false, gracePeriod: 0, allowReadonly: false, debug: false, password: false, requirePublickey: false };
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const key = eq >= 0 ? arg.slice(0, eq + 1) : arg;
    const value = eq >= 0 ? arg.slice(eq + 1) : "";
    switch (key) {
      case "secret=":
        o = { ...o, secret: value };
        break;
      case "user=":
        if (!value) return { ok: false, error: `Invalid setting "${arg}": user= needs an account name or uid` };
        o = { ...o, user: value };
        break;
      case "allowed_perm=": {
        if (!/^[0-7]+$/.test(value) || Number.parseInt(value, 8) === 0) {
          return { ok: false, error: `Invalid permissions in setting "${arg}". allowed_perm setting must be a positive octal integer.` };
        }
        o = { ...o, allowedPerm: Number.parseInt(value, 8) };
        break;
      }
      case "grace_period=":
        if (!/^[0-9]+$/.test(value)) return { ok: false, error: `Invalid value in setting "${arg}". grace_period must be a positive number of seconds.` };
        o = { ...o, gracePeriod: Number(value) };
        break;
      case "log_socket=":
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
        const why = INAPPLICABLE[arg] ?? (key === "authtok_prompt=" ? "pam_exec's prompt is always 'Password: ' (put a hint before it with pam_echo)" : undefined);
        return { ok: false, error: why ? `Option "${arg}" cannot work with otpgate pam: ${why}` : `Unrecognized option "${arg}"` };
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
