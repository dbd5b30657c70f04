// Acting as the account's owner: when root works on a user's state file it switches its effective
// uid/gid (and groups) to that user, as the reference module does with setfsuid, so files are read
// and created with the user's rights and nothing in a user-controlled directory is done as root.
// The real uid stays 0, so the switch can be undone (see the returned function).

export function actAs(uid: number, gid: number): () => void {
  if (typeof process.geteuid !== "function" || process.geteuid() !== 0 || uid === 0) return () => {};
  const groups = process.getgroups?.() ?? [];
  const egid = process.getegid?.() ?? 0;
  process.setgroups?.([gid]);
  process.setegid?.(gid);
  process.seteuid?.(uid);
  return () => {
    process.seteuid?.(0);
    process.setegid?.(egid);
    process.setgroups?.(groups);
  };
}
