// Which login names otpgate will act on. Names come from outside (PAM_USER, a RADIUS User-Name, an
// RStudio sign-in form) and are expanded into state-file paths (${USER}) and looked up in NSS, so
// a name that could leave a directory ("../x", "a/b", ".", ".."), carries control characters or
// NUL, or is absurdly long is refused before anything else happens.

import { ConfigError } from "./errors.js";

export const MAX_USER_NAME = 256;

/** Why `name` cannot be a login name, or null when it can. */
export function userNameProblem(name: string): string | null {
  if (name === "") return "is empty";
  if (name.length > MAX_USER_NAME) return `is longer than ${MAX_USER_NAME} characters`;
  if (name === "." || name === "..") return `is "${name}"`;
  if (name.includes("/")) return 'contains "/"';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return "contains a control character";
  return null;
}

/** A user name that cannot be used (in a path or a lookup). */
export class UserNameError extends ConfigError {}

export function assertUserName(name: string): void {
  const problem = userNameProblem(name);
  if (problem !== null) throw new UserNameError(`the user name ${JSON.stringify(name)} cannot be used: it ${problem}`);
}
