// One decision per user at a time in this process, before a pooled connection is taken. The row
// lock (SELECT ... FOR UPDATE) serializes decisions across hosts, but a waiter on it holds a
// connection the whole time: a flood of requests for one user name (anyone can send them) would
// take every connection of the pool and starve every other user's login. Here the waiters of one
// user wait without a connection; at most MAX_WAITERS of them, each at most `waitMs`, then
// FleetUnavailable (the login refused, as for a busy database).

import { FleetUnavailable } from "../../ports/fleet.js";

export const MAX_WAITERS = 16;

interface Lane {
  /** Entered and not left yet: the holder and its waiters. */
  count: number;
  tail: Promise<void>;
}

export class UserGate {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly waitMs: number) {}

  /** Wait for `user`'s turn; returns the function that ends it (call exactly once). */
  async enter(user: string): Promise<() => void> {
    let lane = this.lanes.get(user);
    if (lane === undefined) {
      lane = { count: 0, tail: Promise.resolve() };
      this.lanes.set(user, lane);
    } else if (lane.count > MAX_WAITERS) {
      throw new FleetUnavailable(`too many decisions for one account at once (${MAX_WAITERS} waiting); the login is refused: try again`);
    }
    const current = lane;
    const previous = current.tail;
    let open!: () => void;
    const mine = new Promise<void>((resolve) => (open = resolve));
    current.tail = previous.then(() => mine);
    current.count++;
    let done = false;
    const leave = () => {
      if (done) return;
      done = true;
      open();
      // The last one out removes the lane (no map growing with every user name ever seen).
      if (--current.count === 0 && this.lanes.get(user) === current) this.lanes.delete(user);
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      previous.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.waitMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      // Our place is given up at once: whoever follows waits only for those before us.
      leave();
      throw new FleetUnavailable("another decision for this account took too long; the login is refused: try again");
    }
    return leave;
  }

  /** Lanes in use (tests). */
  get size(): number {
    return this.lanes.size;
  }
}
