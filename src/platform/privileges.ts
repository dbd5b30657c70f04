// Acting as the account's owner: when root works on a user's state file it switches its effective
// uid/gid (and groups) to that user, as the reference module does with setfsuid, so files are read
// and created with the user's rights and nothing in a user-controlled directory is done as root.

export function actAs(uid: number, gid: number): void {
  if (typeof process.geteuid !== "function" || process.geteuid() !== 0 || uid === 0) return;
  process.setgroups?.([gid]);
  process.setegid?.(gid);
  process.seteuid?.(uid);
}
