// The gateway's own user (config `user:`): started as root, the gateway binds its port(s), then
// becomes this user for good (supplementary groups, gid, then uid: real, effective and saved), and
// checks that it cannot become root again, BEFORE it reads its keys, sessions or password file or
// serves a request. Started as root without `user:` it refuses to run. The admin commands that
// change the gateway's files (keys, sessions --revoke, passwd) write them as this user too.

import { ConfigError } from "../../core/errors.js";
import { groupsOf } from "../../platform/groups.js";
import type { Identity } from "../../platform/privileges.js";
import { lookupUserById, lookupUserByName } from "../../platform/users.js";

export interface GatewayIdentity extends Identity {
  readonly name: string;
  readonly groups: readonly number[];
}

/** `user:` as an account (name or uid); ConfigError when there is none or it is root. */
export function resolveRunAs(spec: string, source: string): GatewayIdentity {
  const account = /^[0-9]+$/.test(spec) ? lookupUserById(Number(spec)) : lookupUserByName(spec);
  if (!account)
    throw new ConfigError(
      `${source}: user: there is no user ${spec}; create it (useradd --system --no-create-home --shell /usr/sbin/nologin ${/^[0-9]+$/.test(spec) ? "otpgate-gw" : spec}) or change user:`,
    );
  if (account.uid === 0) throw new ConfigError(`${source}: user: ${spec} is root; give the gateway a user of its own (e.g. otpgate-gw)`);
  return { name: account.name, uid: account.uid, gid: account.gid, groups: groupsOf(account.name, account.gid) };
}

/** The message when root starts the gateway without `user:` (exit 2). */
export function rootWithoutUserMessage(source: string): string {
  return (
    `${source}: the gateway is internet-facing and must not run as root. Add "user: otpgate-gw" (a user of its own: ` +
    `useradd --system --no-create-home --shell /usr/sbin/nologin otpgate-gw) so it drops to that user after binding its port, ` +
    `and "decision_socket: /run/otpgate/server.sock" so it asks otpgate server instead of reading home directories; ` +
    `or start it as that user (systemd User=)`
  );
}

/** Become `who` for good. Throws (the gateway must not go on) when any step fails or root can be regained. */
export function dropPrivileges(who: GatewayIdentity): void {
  if (typeof process.setuid !== "function" || typeof process.getuid !== "function") throw new ConfigError("user: this platform cannot change the process's user");
  process.setgroups!([...new Set([who.gid, ...who.groups])]);
  process.setgid!(who.gid); // as root: real, effective and saved gid
  process.setuid(who.uid); // as root: real, effective and saved uid
  const ids = [process.getuid(), process.geteuid!(), process.getgid!(), process.getegid!()];
  if (ids[0] !== who.uid || ids[1] !== who.uid || ids[2] !== who.gid || ids[3] !== who.gid) throw new ConfigError(`user: could not become ${who.name} (uid/euid/gid/egid are ${ids.join("/")})`);
  if (process.getgroups!().includes(0) && who.gid !== 0 && !who.groups.includes(0)) throw new ConfigError("user: the root group is still among the supplementary groups");
  for (const back of [() => process.setuid!(0), () => process.seteuid!(0), () => process.setgid!(0), () => process.setegid!(0)]) {
    let regained = false;
    try {
      back();
      regained = true;
    } catch {
      // EPERM: as it must be
    }
    if (regained) throw new ConfigError(`user: after becoming ${who.name} the process could become root again; refusing to run`);
  }
}
