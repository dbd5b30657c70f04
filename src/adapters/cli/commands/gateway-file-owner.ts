// The admin commands that change the gateway's files (otpgate gateway keys, gateway sessions
// --revoke, passwd, invite --replace) run as root, but the files belong to the gateway's user (the
// config's `user:`): they are written AS that user (effective uid/gid for the whole one-shot
// command), never as root into its directory, so the gateway can still read them and root never
// follows a path that user controls.

import { statSync } from "node:fs";
import { dirname } from "node:path";
import { actAs, effectiveUid } from "../../../platform/privileges.js";

export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

/** Run `work` with `owner`'s effective uid and gid when this process is root (and owner is not); as is otherwise. */
export async function asFileOwner<T>(owner: FileOwner | null, work: () => Promise<T>): Promise<T> {
  if (owner === null || effectiveUid() !== 0 || owner.uid === 0) return work();
  const restore = actAs(owner.uid, owner.gid);
  try {
    return await work();
  } finally {
    restore();
  }
}

/**
 * Who owns `path` (the file, or else the nearest existing directory above it) when that is not
 * root: the identity to write it as. null: root's (or nothing exists), written as root.
 */
export function ownerOf(path: string): FileOwner | null {
  for (let p = path; ; p = dirname(p)) {
    try {
      const st = statSync(p);
      return st.uid === 0 ? null : { uid: st.uid, gid: st.gid };
    } catch {
      if (dirname(p) === p) return null;
    }
  }
}
