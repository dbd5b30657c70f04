// Open WebSocket tunnels, by session: the session service ends them when it revokes a session, and
// each one is closed at its session's absolute expiry.

import type { Duplex } from "node:stream";
import type { SessionData } from "../../core/web/index.js";

export interface Tunnel {
  readonly session: SessionData;
  readonly sockets: readonly Duplex[];
}

export interface Tunnels {
  /** Track a tunnel until one of its sockets closes; it is destroyed at `expiresAt` (Unix ms) at the latest. */
  add(session: SessionData, sockets: readonly Duplex[], expiresAt: number, now: number): void;
  /** Destroy every tunnel whose session matches; returns how many. */
  closeTunnels(filter: (session: SessionData) => boolean): number;
  readonly size: number;
}

export function createTunnels(): Tunnels {
  const open = new Map<Tunnel, NodeJS.Timeout>();
  const end = (t: Tunnel) => {
    const timer = open.get(t);
    if (timer === undefined) return;
    clearTimeout(timer);
    open.delete(t);
    for (const s of t.sockets) s.destroy();
  };
  return {
    add(session, sockets, expiresAt, now) {
      const t: Tunnel = { session, sockets };
      // setTimeout's limit is 2^31-1 ms (~24 days); absolute session lifetimes are far below it.
      const timer = setTimeout(() => end(t), Math.min(Math.max(0, expiresAt - now), 2 ** 31 - 1));
      timer.unref();
      open.set(t, timer);
      for (const s of sockets) s.once("close", () => end(t));
    },
    closeTunnels(filter) {
      let n = 0;
      for (const t of [...open.keys()]) {
        if (filter(t.session)) {
          end(t);
          n++;
        }
      }
      return n;
    },
    get size() {
      return open.size;
    },
  };
}
