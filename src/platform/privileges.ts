// Acting as the account's owner: when root works on a user's state file it switches its effective
// uid/gid (and groups) to that user, as the reference module does with setfsuid, so files are read
// and created with the user's rights and nothing in a user-controlled directory is done as root.
// The real uid stays 0, so the switch can be undone.
//
// Two forms: actAs() switches until the returned function is called (one-shot commands that do
// nothing else as root); asUser() runs one synchronous function as the user and switches back right
// after, for long-running processes (otpgate radius, the gateway) that must never be the user across
// an await. seteuid is process-wide (glibc applies it to every thread), so a section must be short
// and synchronous: the file store wraps each of its file operations in one.

export interface Identity {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups while acting as the user (default: the primary group only). */
  readonly groups?: readonly number[] | undefined;
}

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

/** The effective uid, or null on a platform without one. */
export function effectiveUid(): number | null {
  return typeof process.geteuid === "function" ? process.geteuid() : null;
}

/** Whether this process can act as `uid`: it already is that user, or it is root. */
export function canActAs(uid: number): boolean {
  const euid = effectiveUid();
  return euid === null || euid === uid || euid === 0;
}

export class PrivilegeError extends Error {
  override name = "PrivilegeError";
}

/**
 * Run `section` (synchronous) with `who`'s effective uid, gid and groups, then switch back to root
 * at once, also when it throws. A no-op when the process already runs as `who`; a PrivilegeError
 * when it is neither root nor `who`.
 */
export function asUser<T>(who: Identity, section: () => T): T {
  const euid = effectiveUid();
  if (euid === null || euid === who.uid) return section();
  if (euid !== 0) throw new PrivilegeError(`running as uid ${euid}, which cannot act as uid ${who.uid}`);
  if (who.uid === 0) return section();
  const groups = process.getgroups!();
  const egid = process.getegid!();
  process.setgroups!([...(who.groups ?? [who.gid])]);
  try {
    process.setegid!(who.gid);
    process.seteuid!(who.uid);
  } catch (err) {
    restore(egid, groups);
    throw err;
  }
  let result: T;
  try {
    result = section();
  } finally {
    restore(egid, groups);
  }
  if (result instanceof Promise) throw new PrivilegeError("asUser() takes a synchronous section; an await would run other work as the user");
  return result;
}

function restore(egid: number, groups: number[]): void {
  process.seteuid!(0);
  process.setegid!(egid);
  process.setgroups!(groups);
}
