// Which account a command acts on and where its state file is: `--user NAME` (root only for other
// users) and/or `-s PATH` (a path, or a pattern with ~, ${HOME}, ${USER}); default
// ~user/.google_authenticator of the invoking user.

import { isAbsolute, resolve } from "node:path";
import { ConfigError, UsageError } from "../core/errors.js";
import { lookupUserById, lookupUserByName, type UserAccount } from "../platform/users.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "./secret-path.js";

export interface AccountTarget {
  readonly user: UserAccount;
  readonly path: string;
}

export interface TargetRequest {
  readonly user?: string | undefined;
  readonly secret?: string | undefined;
  readonly euid: number;
  readonly cwd: string;
}

function isPattern(spec: string): boolean {
  return spec.startsWith("~") || spec.includes("${HOME}") || spec.includes("${USER}");
}

export function resolveTarget(req: TargetRequest): AccountTarget {
  let user: UserAccount | null;
  if (req.user !== undefined) {
    user = /^[0-9]+$/.test(req.user) ? lookupUserById(Number(req.user)) : lookupUserByName(req.user);
    if (!user) throw new ConfigError(`no such user "${req.user}"; check the name with getent passwd`);
    if (req.euid !== 0 && user.uid !== req.euid) {
      throw new UsageError(`only root can act on another user's account ("${user.name}"); run it as root or as ${user.name}`);
    }
  } else {
    user = lookupUserById(req.euid);
    if (!user) throw new ConfigError(`the current uid ${req.euid} has no passwd entry; pass --user NAME`);
  }
  const spec = req.secret ?? DEFAULT_SECRET_SPEC;
  const path = isPattern(spec) || isAbsolute(spec) ? expandSecretPath(spec, { name: user.name, home: user.home || null }) : resolve(req.cwd, spec);
  return { user, path };
}
