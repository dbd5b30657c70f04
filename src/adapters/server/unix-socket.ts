// The API socket's place: a directory only root and one group may enter (0750 root:GROUP) holding
// the socket (0660 root:GROUP). Both are checked before anything is created: a directory owned by
// someone else, a symlink, or a path that exists and is not a socket we may replace is refused, and
// so is any directory on the way from / that someone other than root could change (red team 2, F5).
// A leftover socket of a server that is gone is replaced; one that still answers is not.

import { chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import type { Server } from "node:http";
import { basename, dirname } from "node:path";
import { ConfigError } from "../../core/errors.js";

export const DEFAULT_SOCKET = "/run/otpgate/server.sock";
export const DEFAULT_SOCKET_GROUP = "otpgate";

/** The gid of a group name (or a number), from /etc/group; null when there is no such group. */
export function groupId(name: string, groupFile = "/etc/group"): number | null {
  if (/^[0-9]+$/.test(name)) return Number(name);
  for (const line of readFileSync(groupFile, "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 3 && /^[0-9]+$/.test(f[2] ?? "")) return Number(f[2]);
  }
  return null;
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code ?? "error";

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

/**
 * Every directory from / down to `dir`'s parent must be root's, not a symlink, and not writable by
 * its group or others (a sticky directory such as /tmp is allowed on the way: nobody but root may
 * rename root's entries in it). Otherwise whoever can write one of them could swap the directory
 * below for a symlink after the checks and aim root's chown/chmod at a file of her choice.
 */
function checkChain(dir: string, socketPath: string, euid: number): void {
  const parts = dir.split("/").filter((p) => p !== "");
  let at = "/";
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) at = at === "/" ? `/${parts[i - 1]}` : `${at}/${parts[i - 1]}`;
    let st;
    try {
      st = lstatSync(at);
    } catch (err) {
      if (errno(err) === "ENOENT" && i === parts.length) return; // the socket's own directory: made below
      throw new ConfigError(`cannot check ${at} (${errno(err)}) on the way to --socket ${socketPath}; create it (owned by root, mode 0755), or choose another --socket`);
    }
    if (st.isSymbolicLink()) {
      let real = "";
      try {
        real = ` (${realpathSync(at)}${socketPath.slice(at.length)})`;
      } catch {
        // no real path to suggest
      }
      throw new ConfigError(`${at} is a symlink on the way to --socket ${socketPath}: otpgate server does not follow symlinks there; give the real path${real}`);
    }
    if (!st.isDirectory()) throw new ConfigError(`${at} is not a directory; choose another --socket`);
    const own = i === parts.length;
    if (st.uid !== euid)
      throw new ConfigError(
        `${at} belongs to uid ${st.uid}, not to uid ${euid}: whoever owns it could replace the socket or aim root's chown at another file; choose a --socket below directories only root may change (the default ${DEFAULT_SOCKET})`,
      );
    if ((st.mode & 0o022) !== 0 && (own || (st.mode & 0o1000) === 0)) {
      throw new ConfigError(
        own
          ? `${at} may be written by its group or others (mode ${(st.mode & 0o7777).toString(8)}): otpgate server needs a directory of its own for --socket, such as ${dirname(DEFAULT_SOCKET)}; choose another --socket`
          : `${at} may be written by its group or others (mode ${(st.mode & 0o7777).toString(8)}) and is not sticky: anyone who can write it could swap the directory below; chmod go-w ${at}, or choose another --socket`,
      );
    }
  }
}

/** Make the directory (0750 root:gid) and clear the way for the socket; throws ConfigError. */
export async function prepareSocketPath(path: string, gid: number): Promise<void> {
  if (!path.startsWith("/")) throw new ConfigError(`--socket must be an absolute path, not "${path}"`);
  const dir = dirname(path);
  const name = basename(path);
  const euid = process.geteuid?.() ?? 0;
  checkChain(dir, path, euid);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (errno(err) !== "EEXIST") throw new ConfigError(`cannot create ${dir} (${errno(err)}); create its parent, or choose another --socket`);
  }
  // Through a descriptor opened without following a symlink: the owner and mode change exactly
  // the directory checked here (its parents are root's alone, see checkChain).
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new ConfigError(`${dir} is not a directory (a symlink?) (${errno(err)}); remove it, or choose another --socket`);
  }
  try {
    const st = fstatSync(fd);
    if (st.uid !== euid) throw new ConfigError(`${dir} belongs to uid ${st.uid}, not to uid ${euid}: whoever owns it could replace the socket; remove it, or choose another --socket`);
    if ((st.mode & 0o022) !== 0)
      throw new ConfigError(
        `${dir} may be written by its group or others (mode ${(st.mode & 0o7777).toString(8)}): otpgate server needs a directory of its own for --socket, such as ${dirname(DEFAULT_SOCKET)}; choose another --socket`,
      );
    const others = readdirSync(dir).filter((e) => e !== name);
    if (others.length > 0)
      throw new ConfigError(
        `${dir} holds other files (${others.slice(0, 3).join(", ")}): otpgate server gives the socket's directory to group ${gid} and mode 0750, so it needs a directory of its own, such as ${dirname(DEFAULT_SOCKET)}; choose another --socket`,
      );
    try {
      fchownSync(fd, euid, gid);
      fchmodSync(fd, 0o750);
    } catch (err) {
      throw new ConfigError(`cannot give ${dir} to group ${gid} (${errno(err)}): otpgate server must run as root with CAP_CHOWN (the otpgate-server unit's CapabilityBoundingSet has it)`);
    }
  } finally {
    closeSync(fd);
  }
  let sock;
  try {
    sock = lstatSync(path);
  } catch (err) {
    if (errno(err) === "ENOENT") return;
    throw new ConfigError(`cannot check ${path} (${errno(err)})`);
  }
  if (!sock.isSocket()) throw new ConfigError(`${path} exists and is not a socket; otpgate server does not replace it: remove it, or choose another --socket`);
  if (sock.uid !== euid) throw new ConfigError(`${path} is a socket of uid ${sock.uid}, not ours; remove it, or choose another --socket`);
  if (await answers(path)) throw new ConfigError(`${path} is in use: another otpgate server answers there. Stop it first (systemctl stop otpgate-server), or choose another --socket`);
  unlinkSync(path);
}

/** Listen on the prepared path and give the socket to root and the group only (0660). */
export async function listenOnSocket(server: Server, path: string, gid: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Only root may write the directory (prepareSocketPath), so what lstat sees is what listen made;
  // lchown and the check keep a symlink from ever redirecting the change.
  const euid = process.geteuid?.() ?? 0;
  const st = lstatSync(path);
  if (!st.isSocket() || st.uid !== euid) throw new ConfigError(`${path} is not the socket otpgate server just made; check who can write ${dirname(path)}`);
  lchownSync(path, euid, gid);
  chmodSync(path, 0o660);
}
