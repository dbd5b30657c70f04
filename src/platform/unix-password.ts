// Check a local (shadow) password with pam_unix's own helper, unix_chkpwd, which root may run for
// any account. Used for "password + code typed together" where pam_exec cannot hand the password
// to pam_unix. Only local accounts: LDAP/SSSD passwords are not checked this way.

import type * as ChildProcess from "node:child_process";
import { builtin } from "./builtin.js";

export const UNIX_CHKPWD = "/usr/sbin/unix_chkpwd";

export function checkUnixPassword(user: string, password: string): boolean {
  if (password === "" || password.includes("\0")) return false;
  const r = builtin<typeof ChildProcess>("node:child_process").spawnSync(UNIX_CHKPWD, [user, "nonull"], {
    input: Buffer.concat([Buffer.from(password, "latin1"), Buffer.from([0])]),
    stdio: ["pipe", "ignore", "ignore"],
    timeout: 5000,
    env: {},
  });
  return r.status === 0;
}
