// The gateway's password file: one "user:hash" line per user (like htpasswd), the hash an argon2id
// PHC string. Comments (#) and blank lines are kept as they are when an entry changes. User names
// follow the one rule of every front-end (core/user-name.ts), so an SSSD name such as alice@corp
// that logs in over SSH has a password line too; only what the file's own syntax cannot hold is
// refused on top: ':' (the separator), white space, and a leading '#' (a comment).

import { ConfigError } from "../errors.js";
import { userNameProblem } from "../user-name.js";

/** Why `user` cannot have a line in the password file, or null when it can. */
export function passwordEntryNameProblem(user: string): string | null {
  const problem = userNameProblem(user);
  if (problem !== null) return problem;
  if (user.includes(":")) return 'contains ":"';
  if (/\s/u.test(user)) return "contains white space";
  if (user.startsWith("#")) return 'starts with "#"';
  return null;
}
const ARGON2ID = /^\$argon2id\$v=19\$(?:[mtp]=[0-9]{1,10},){2}[mtp]=[0-9]{1,10}\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}$/;

export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_BYTES = 1024;

/** user -> argon2id hash; a malformed line is an error naming its line number (never its content). */
export function parsePasswordEntries(text: string, source = "password file"): Map<string, string> {
  const entries = new Map<string, string>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const colon = line.indexOf(":");
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon < 1 || passwordEntryNameProblem(user) !== null || !ARGON2ID.test(hash)) {
      throw new ConfigError(`${source}, line ${i + 1}: not "user:$argon2id$..." (set the password again with otpgate passwd, or delete the line)`);
    }
    if (entries.has(user)) throw new ConfigError(`${source}, line ${i + 1}: a second line for ${user}; delete one of them`);
    entries.set(user, hash);
  });
  return entries;
}

/** The file's text with `user`'s line replaced, appended, or (hash null) removed. */
export function withPasswordEntry(text: string, user: string, hash: string | null, source = "password file"): string {
  const problem = passwordEntryNameProblem(user);
  if (problem !== null) throw new ConfigError(`the user name ${JSON.stringify(user)} cannot be used in the password file: it ${problem}`);
  if (hash !== null && !ARGON2ID.test(hash)) throw new ConfigError("not an argon2id hash");
  parsePasswordEntries(text, source);
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const at = lines.findIndex((l) => l.startsWith(`${user}:`));
  if (hash === null) {
    if (at >= 0) lines.splice(at, 1);
  } else if (at >= 0) lines[at] = `${user}:${hash}`;
  else lines.push(`${user}:${hash}`);
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** Why a new password is not acceptable, or null. */
export function passwordProblem(password: string): string | null {
  if ([...password].length < MIN_PASSWORD_LENGTH) return `the password must have at least ${MIN_PASSWORD_LENGTH} characters`;
  if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) return `the password must have at most ${MAX_PASSWORD_BYTES} bytes`;
  if (/[\u0000-\u001f\u007f]/.test(password)) return "the password must not contain control characters";
  return null;
}
