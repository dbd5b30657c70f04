// Typed errors. Each carries the exit code its command ends with and a message that says what is
// wrong and what to do next. Messages never contain secrets or codes.

export type ExitCode = 0 | 1 | 2;

export class OtpgateError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = 2,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad command line: unknown flag, missing or malformed argument. */
export class UsageError extends OtpgateError {}

/** The state file cannot be used: missing permissions, wrong owner, symlink, size, content. */
export class StateFileError extends OtpgateError {}

/** Configuration outside the state file: unknown user, bad path pattern. */
export class ConfigError extends OtpgateError {}

/** The account stayed locked by another login for longer than the wait limit. */
export class LockTimeoutError extends OtpgateError {}

/** How messages tell an admin to (re-)enroll an account. */
export const ENROLL_HINT = "enroll the user with otpgate enroll (or google-authenticator)";
