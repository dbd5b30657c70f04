// Pending enrollment invitations (otpgate invite): one small JSON file per invitation in a root-only
// directory, named by the SHA-256 of its token, so neither a directory listing nor a backup of it
// holds a usable link. An invitation is used once: the gateway claims it by renaming its file
// (atomic: of two concurrent claims one wins), and deletes it once the state file is written.

import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../core/errors.js";
import { userNameProblem } from "../core/user-name.js";
import { fsyncDir, removeQuietly } from "../platform/atomic-file.js";
import { readPrivateFile } from "../platform/private-file.js";

export interface Invite {
  /** SHA-256 of the token, hex: the file name, and what logs may show. */
  readonly id: string;
  readonly user: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Replace an existing state file (a lost phone); otherwise an enrolled user cannot use it. */
  readonly replace: boolean;
}

const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const ID = /^[0-9a-f]{64}$/;
const CLAIMED = ".claimed";

export const inviteId = (token: string): string => createHash("sha256").update(token).digest("hex");

function checkDir(dir: string, create: boolean): void {
  if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
  let st;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(code === "ENOENT" ? `no invitations yet: ${dir} does not exist (otpgate invite creates it)` : `cannot use ${dir} (${code})`);
  }
  const euid = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw new ConfigError(`${dir} is not a directory`);
  if (st.uid !== euid || (st.mode & 0o077) !== 0) throw new ConfigError(`${dir} must belong to uid ${euid} with mode 0700 (it holds invitations): chown ${euid} ${dir} && chmod 700 ${dir}`);
}

function parseInvite(id: string, text: string): Invite | null {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.user !== "string" || userNameProblem(v.user) !== null || typeof v.expiresAt !== "number" || typeof v.createdAt !== "number") return null;
    return { id, user: v.user, createdAt: v.createdAt, expiresAt: v.expiresAt, replace: v.replace === true };
  } catch {
    return null;
  }
}

function readInvite(path: string, id: string): Invite | null {
  let file;
  try {
    // The directory is root's, mode 0700 (checkDir); a file in it that is not ours is not an invitation.
    file = readPrivateFile(path, { what: "an invitation", maxBytes: 4096, allowedMode: 0o600, follow: false });
  } catch {
    return null;
  }
  return file ? parseInvite(id, file.bytes.toString("utf8")) : null;
}

/** Pending invitations; expired ones (and claims abandoned by a crash an hour ago) are deleted. */
export function listInvites(dir: string, nowMs: number): Invite[] {
  checkDir(dir, false);
  const out: Invite[] = [];
  for (const name of readdirSync(dir)) {
    const claimed = name.endsWith(CLAIMED);
    const id = claimed ? name.slice(0, -CLAIMED.length) : name;
    if (!ID.test(id)) continue;
    const invite = readInvite(join(dir, name), id);
    if (!invite || invite.expiresAt <= nowMs - (claimed ? 3_600_000 : 0)) removeQuietly(join(dir, name));
    else if (!claimed) out.push(invite);
  }
  return out.sort((a, b) => a.createdAt - b.createdAt);
}

/** Remove the user's pending invitations; returns how many there were. */
export function revokeInvites(dir: string, user: string, nowMs: number): number {
  const mine = listInvites(dir, nowMs).filter((i) => i.user === user);
  for (const i of mine) removeQuietly(join(dir, i.id));
  if (mine.length) fsyncDir(dir);
  return mine.length;
}

/** A new invitation (replacing the user's earlier ones); returns the token for the link. */
export function createInvite(dir: string, user: string, options: { nowMs: number; ttlMs: number; replace: boolean }): { token: string; invite: Invite } {
  checkDir(dir, true);
  revokeInvites(dir, user, options.nowMs);
  const token = randomBytes(32).toString("base64url");
  const invite: Invite = { id: inviteId(token), user, createdAt: options.nowMs, expiresAt: options.nowMs + options.ttlMs, replace: options.replace };
  const fd = openSync(join(dir, invite.id), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, JSON.stringify({ user, createdAt: invite.createdAt, expiresAt: invite.expiresAt, replace: invite.replace }) + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dir);
  return { token, invite };
}

/** The pending, unexpired invitation for a token from a link, or null. */
export function findInvite(dir: string, token: string, nowMs: number): Invite | null {
  if (!TOKEN.test(token)) return null;
  const id = inviteId(token);
  const invite = readInvite(join(dir, id), id);
  if (!invite) return null;
  if (invite.expiresAt <= nowMs) {
    removeQuietly(join(dir, id));
    return null;
  }
  return invite;
}

export interface Claim {
  /** The enrollment was saved: the invitation is gone for good. */
  done(): void;
  /** Saving failed: the invitation can be used again. */
  release(): void;
}

/** Take the invitation for this enrollment; null when another request took it first (or it is gone). */
export function claimInvite(dir: string, invite: Invite): Claim | null {
  const path = join(dir, invite.id);
  try {
    renameSync(path, path + CLAIMED);
  } catch {
    return null;
  }
  return {
    done: () => {
      removeQuietly(path + CLAIMED);
      fsyncDir(dir);
    },
    release: () => renameSync(path + CLAIMED, path),
  };
}
