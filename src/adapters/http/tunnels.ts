// Open WebSocket tunnels, by session. Each tunnel re-checks its session every `recheckMs` (and when
// the session service reports ended sessions or new keys): revocation, "valid after", the secret's
// fingerprint, the sealing key still present, idle and absolute timeouts. Traffic through the
// tunnel counts as activity; a silent tunnel closes once its session is idle. Each one is also
// closed at its session's absolute expiry by a timer of its own.

import type { Duplex } from "node:stream";
import type { SessionData } from "../../core/web/index.js";

/** Whether the tunnel's session is still valid; `active`: traffic passed since the last check (refreshes the session). */
export type TunnelCheck = (active: boolean) => boolean;

export interface Tunnel {
  readonly session: SessionData;
  readonly sockets: readonly Duplex[];
}

export interface Tunnels {
  /** Track a tunnel until one of its sockets closes; it is destroyed at `expiresAt` (Unix ms) at the latest, and when `check` says no. */
  add(session: SessionData, sockets: readonly Duplex[], expiresAt: number, now: number, check?: TunnelCheck): void;
  /** Destroy every tunnel whose session matches; returns how many. */
  closeTunnels(filter: (session: SessionData) => boolean): number;
  /** Run every tunnel's check now; destroys those whose session is no longer valid; returns how many. */
  recheck(): number;
  readonly size: number;
}

interface Entry {
  readonly timer: NodeJS.Timeout;
  readonly check: TunnelCheck | undefined;
  active: boolean;
}

export function createTunnels(recheckMs = 60_000): Tunnels {
  const open = new Map<Tunnel, Entry>();
  let every: NodeJS.Timeout | undefined;
  const end = (t: Tunnel) => {
    const e = open.get(t);
    if (e === undefined) return;
    clearTimeout(e.timer);
    open.delete(t);
    if (open.size === 0 && every !== undefined) {
      clearInterval(every);
      every = undefined;
    }
    for (const s of t.sockets) s.destroy();
  };
  const tunnels: Tunnels = {
    add(session, sockets, expiresAt, now, check) {
      const t: Tunnel = { session, sockets };
      // setTimeout's limit is 2^31-1 ms (~24 days); absolute session lifetimes are far below it.
      const timer = setTimeout(() => end(t), Math.min(Math.max(0, expiresAt - now), 2 ** 31 - 1));
      timer.unref();
      const e: Entry = { timer, check, active: false };
      open.set(t, e);
      for (const s of sockets) {
        s.once("close", () => end(t));
        // Counted, not consumed: a 'data' listener on a piped (already flowing) stream only observes.
        if (check) s.on("data", () => void (e.active = true));
      }
      if (check && every === undefined) {
        every = setInterval(() => tunnels.recheck(), recheckMs);
        every.unref();
      }
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
    recheck() {
      let n = 0;
      for (const [t, e] of [...open]) {
        if (!e.check) continue;
        const active = e.active;
        e.active = false;
        let valid = false;
        try {
          valid = e.check(active);
        } catch {
          valid = false;
        }
        if (!valid) {
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
  return tunnels;
}
