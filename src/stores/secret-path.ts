// Expansion of the state-file path pattern, as the reference module's secret= option does it:
// `~` (at the start or right after '/', not straight after another expansion) and ${HOME} become
// the account's home directory, ${USER} the user name. `$USER` without braces stays literal. A user
// name that could leave the directory ("..", "a/b", control characters) is refused.

import { ConfigError } from "../core/errors.js";
import { assertUserName } from "../core/user-name.js";

export const DEFAULT_SECRET_SPEC = "~/.google_authenticator";

export interface PathOwner {
  readonly name: string;
  /** Home directory, or null when unknown (then `~` and ${HOME} are errors). */
  readonly home: string | null;
}

export function expandSecretPath(spec: string, owner: PathOwner): string {
  let out = "";
  let allowTilde = true;
  let i = 0;
  const home = () => {
    if (owner.home === null || !owner.home.startsWith("/")) {
      throw new ConfigError(`cannot expand "${spec}": no home directory is known for "${owner.name}"; give an absolute path without ~ or \${HOME}`);
    }
    return owner.home;
  };
  while (i < spec.length) {
    if (allowTilde && spec[i] === "~") {
      out += home();
      i += 1;
      allowTilde = false;
    } else if (spec.startsWith("${HOME}", i)) {
      out += home();
      i += 7;
      allowTilde = false;
    } else if (spec.startsWith("${USER}", i)) {
      // The name comes from outside (PAM_USER): it must not walk out of the directory.
      assertUserName(owner.name);
      out += owner.name;
      i += 7;
      allowTilde = false;
    } else {
      allowTilde = spec[i] === "/";
      out += spec[i];
      i += 1;
    }
  }
  if (!out.startsWith("/")) {
    throw new ConfigError(`the state file path "${out}" (from "${spec}") is not absolute; use an absolute path`);
  }
  return out;
}
