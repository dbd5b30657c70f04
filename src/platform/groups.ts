// Supplementary groups of a user from /etc/group (Node has no getgrouplist), so that a root process
// acting as the user has the user's group rights, not root's. NSS-only groups (LDAP, sssd) are not
// listed there; the user then acts with the primary group only, which can only mean less access.

import { readFileSync } from "node:fs";

/** The gids whose member list in /etc/group text names `user`, plus the primary gid, first. */
export function groupsFromText(text: string, user: string, primaryGid: number): number[] {
  const gids = [primaryGid];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid) || gids.includes(gid)) continue;
    if (f[3]!.split(",").includes(user)) gids.push(gid);
  }
  return gids;
}

export function groupsOf(user: string, primaryGid: number, groupPath = "/etc/group"): number[] {
  try {
    return groupsFromText(readFileSync(groupPath, "utf8"), user, primaryGid);
  } catch {
    return [primaryGid];
  }
}
