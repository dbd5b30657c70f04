// Account lookup (Node has no getpwnam): /etc/passwd first, then `getent passwd` so NSS sources
// such as LDAP or sssd work too.

import { readFileSync } from "node:fs";
import type * as ChildProcess from "node:child_process";
import { userNameProblem } from "../core/user-name.js";
import { builtin } from "./builtin.js";

export interface UserAccount {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

function parsePasswdLine(line: string): UserAccount | null {
  const f = line.split(":");
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!f[0] || !Number.isInteger(uid) || !Number.isInteger(gid)) return null;
  return { name: f[0], uid, gid, home: f[5] ?? "" };
}

function fromPasswdFile(match: (u: UserAccount) => boolean, passwdPath: string): UserAccount | null {
  let text: string;
  try {
    text = readFileSync(passwdPath, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const u = parsePasswdLine(line);
    if (u && match(u)) return u;
  }
  return null;
}

function fromGetent(key: string): UserAccount | null {
  try {
    const out = builtin<typeof ChildProcess>("node:child_process").execFileSync("/usr/bin/getent", ["passwd", key], { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"] });
    return parsePasswdLine(out.trim());
  } catch {
    return null;
  }
}

const VALID_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.@-]*\$?$/;

/**
 * The account named exactly `name`. `getent passwd KEY` also answers a numeric KEY with the
 * account of that uid, so an answer is only taken when its name is the one asked for: the name
 * "1006" is not uid 1006.
 */
export function lookupUserByName(name: string, passwdPath = "/etc/passwd", getent: (key: string) => UserAccount | null = fromGetent): UserAccount | null {
  if (userNameProblem(name) !== null || !VALID_NAME.test(name)) return null;
  const found = fromPasswdFile((u) => u.name === name, passwdPath) ?? getent(name);
  return found !== null && found.name === name ? found : null;
}

/** The account with uid `uid` (an explicit uid, e.g. user=0 in a PAM line; never a login name). */
export function lookupUserById(uid: number, passwdPath = "/etc/passwd", getent: (key: string) => UserAccount | null = fromGetent): UserAccount | null {
  if (!Number.isInteger(uid) || uid < 0) return null;
  const found = fromPasswdFile((u) => u.uid === uid, passwdPath) ?? getent(String(uid));
  return found !== null && found.uid === uid ? found : null;
}

/** Every account: getent passwd (all NSS sources), or /etc/passwd when getent is unavailable. */
export function allUsers(passwdPath = "/etc/passwd"): UserAccount[] {
  let text: string;
  try {
    text = builtin<typeof ChildProcess>("node:child_process").execFileSync("/usr/bin/getent", ["passwd"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    try {
      text = readFileSync(passwdPath, "utf8");
    } catch {
      return [];
    }
  }
  const seen = new Set<string>();
  const users: UserAccount[] = [];
  for (const line of text.split("\n")) {
    const u = parsePasswdLine(line);
    if (u && !seen.has(u.name)) {
      seen.add(u.name);
      users.push(u);
    }
  }
  return users;
}
