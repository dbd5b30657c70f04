// Where `otpgate db import` finds state files (issue 11), as ImportCopy values for the plan
// (services/import-plan.ts):
//   - this host: every account (getent passwd) with a ~/.google_authenticator, each read AS ITS
//     OWNER through the caller's reader (stores/file-accounts.ts), never as root;
//   - a directory of files collected from several hosts, DIR/HOST/USER: read as root, so the whole
//     tree must be root's and writable by nobody else (every component of DIR, each HOST directory,
//     each file owned by root, mode 0600 or stricter, no symbolic links): otherwise another local user
//     could slip in a file with a secret of their own for someone's account;
//   - one file for one user (--file PATH --user NAME): read as root from such a root-only directory,
//     or else as NAME (an account on this host) the way its own state file is read.

import { lstatSync, readdirSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError } from "../core/errors.js";
import { userNameProblem } from "../core/user-name.js";
import { readPrivateFile } from "../platform/private-file.js";
import { describeProblems, pathProblems } from "../platform/trusted-path.js";
import { allUsers, lookupUserByName, type UserAccount } from "../platform/users.js";
import type { ImportCopy, ImportFailure } from "../services/import-plan.js";

/** Read `path` as `owner` (the file store's checks); null when there is no file. */
export type OwnedReader = (owner: UserAccount, path: string) => string | null;

export interface FoundCopies {
  readonly copies: ImportCopy[];
  readonly failures: ImportFailure[];
}

const MAX_BYTES = 64 * 1024;
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** This host's accounts (or only `only`), each file read as its owner. */
export function thisHostCopies(read: OwnedReader, statePath: (user: UserAccount) => string | null, only?: string): FoundCopies {
  const host = hostname() || "localhost";
  const copies: ImportCopy[] = [];
  const failures: ImportFailure[] = [];
  let users: UserAccount[];
  if (only !== undefined) {
    const found = lookupUserByName(only);
    if (!found) throw new ConfigError(`no such user "${only}" on this host; check the name with getent passwd`);
    users = [found];
  } else {
    users = allUsers();
  }
  for (const user of users) {
    const path = statePath(user);
    if (path === null) continue;
    try {
      const text = read(user, path);
      if (text !== null) copies.push({ host, user: user.name, text });
      else if (only !== undefined) throw new ConfigError(`${only} has no state file (${path}); nothing to import`);
    } catch (err) {
      if (only !== undefined && err instanceof ConfigError) throw err;
      failures.push({ host, user: user.name, problem: messageOf(err) });
    }
  }
  return { copies, failures };
}

/** Why `path` (a directory) may not be read as root, or null when only root can change it. */
function rootOnlyProblem(path: string): string | null {
  const problems = pathProblems(path);
  return problems.length === 0 ? null : describeProblems(problems);
}

function readRootFile(path: string): string | null {
  const file = readPrivateFile(path, {
    what: "collected state file",
    maxBytes: MAX_BYTES,
    minBytes: 1,
    ownerUid: 0,
    ownerName: "root",
    allowedMode: 0o600,
    follow: false,
  });
  if (!file) return null;
  try {
    if (file.bytes.includes(0)) throw new ConfigError(`${path} contains NUL bytes: it is not a google-authenticator state file`);
    return file.bytes.toString("latin1");
  } finally {
    file.bytes.fill(0);
  }
}

/** DIR/HOST/USER, every part root's (see the header). */
export function collectedCopies(dir: string): FoundCopies {
  if (!dir.startsWith("/")) throw new ConfigError(`--from ${dir}: give an absolute path`);
  const problem = rootOnlyProblem(dir);
  if (problem !== null) {
    throw new ConfigError(
      `--from ${dir}: the collected files are read as root, so the directory must be root's and writable by nobody else (${problem}); fix it with chown -R root: ${dir} && chmod -R go-w ${dir}`,
    );
  }
  const copies: ImportCopy[] = [];
  const failures: ImportFailure[] = [];
  for (const host of readdirSync(dir).sort()) {
    const hostDir = join(dir, host);
    const st = lstatSync(hostDir);
    if (!st.isDirectory()) throw new ConfigError(`--from ${dir}: ${hostDir} is not a directory (the layout is DIR/HOST/USER; a symbolic link is refused)`);
    if (!HOST_NAME.test(host)) throw new ConfigError(`--from ${dir}: ${JSON.stringify(host)} is not a host name (letters, digits, ".", "_", "-")`);
    if (st.uid !== 0 || (st.mode & 0o022) !== 0)
      throw new ConfigError(`--from ${dir}: ${hostDir} must be root's and writable by nobody else; fix it with chown -R root: ${dir} && chmod -R go-w ${dir}`);
    for (const user of readdirSync(hostDir).sort()) {
      const nameProblem = userNameProblem(user);
      if (nameProblem !== null || user.startsWith(".")) {
        failures.push({ host, user: JSON.stringify(user), problem: `not a user name (${nameProblem ?? "starts with a dot"})` });
        continue;
      }
      try {
        const text = readRootFile(join(hostDir, user));
        if (text !== null) copies.push({ host, user, text });
      } catch (err) {
        failures.push({ host, user, problem: messageOf(err) });
      }
    }
  }
  return { copies, failures };
}

/** One file for one user (see the header). */
export function singleFileCopy(path: string, user: string, read: OwnedReader): FoundCopies {
  if (!path.startsWith("/")) throw new ConfigError(`--file ${path}: give an absolute path`);
  const nameProblem = userNameProblem(user);
  if (nameProblem !== null) throw new ConfigError(`--user ${JSON.stringify(user)}: not a user name (it ${nameProblem})`);
  const host = hostname() || "localhost";
  let text: string | null;
  if (rootOnlyProblem(dirname(path)) === null) {
    text = readRootFile(path);
  } else {
    const owner = lookupUserByName(user);
    if (!owner) {
      throw new ConfigError(
        `--file ${path}: its directory can be changed by users other than root, and ${user} is not an account on this host to read it as; copy it into a root-only directory (install -d -m 700 /root/otp-import; install -m 600 FILE /root/otp-import/) and try again`,
      );
    }
    text = read(owner, path);
  }
  if (text === null) throw new ConfigError(`--file ${path} does not exist`);
  return { copies: [{ host, user, text }], failures: [] };
}
