// The API socket's place: a directory only root and one group may enter (0750 root:GROUP) holding
// the socket (0660 root:GROUP). Both are checked before anything is created: a directory owned by
// someone else, a symlink, or a path that exists and is not a socket we may replace is refused.
// A leftover socket of a server that is gone is replaced; one that still answers is not.

import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import type { Server } from "node:http";
import { dirname } from "node:path";
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

/** Make the directory (0750 root:gid) and clear the way for the socket; throws ConfigError. */
export async function prepareSocketPath(path: string, gid: number): Promise<void> {
  if (!path.startsWith("/")) throw new ConfigError(`--socket must be an absolute path, not "${path}"`);
  const dir = dirname(path);
  const euid = process.geteuid?.() ?? 0;
  try {
    mkdirSync(dir, { mode: 0o750 });
  } catch (err) {
    if (errno(err) !== "EEXIST") throw new ConfigError(`cannot create ${dir} (${errno(err)}); create its parent, or choose another --socket`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new ConfigError(`${dir} is not a directory (a symlink?); remove it, or choose another --socket`);
  if (st.uid !== euid) throw new ConfigError(`${dir} belongs to uid ${st.uid}, not to uid ${euid}: whoever owns it could replace the socket; remove it, or choose another --socket`);
  chownSync(dir, euid, gid);
  chmodSync(dir, 0o750);
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
  chownSync(path, process.geteuid?.() ?? 0, gid);
  chmodSync(path, 0o660);
}
