// One pool of app connections per user (red team 1, F9): an app connection carries the requests of
// one user only, like HAProxy's `http-reuse safe` or a per-identity connection pool. With a shared
// pool (nginx keep-alive), an app that sends stray bytes after a complete answer (a lying
// Content-Length, a handler writing after it ended) can have them read as the next request's answer,
// and that request may be another user's. With pools per user, the worst such an app can do is
// confuse one user's own requests.
//
// Bounded: at most `maxPools` users' pools are kept, in least-recently-used order. A new user's pool
// replaces the least recently used pool with nothing in flight; when every pool has a request in
// flight, the request is refused (AppPoolsFull: the gateway answers 503). A pool with nothing in
// flight for `idleMs` is closed. Requests without a user (none today: the gateway forwards only
// signed-in requests) have a pool of their own that no user's request uses, outside the count.
// Generic over the pool so that the bookkeeping is tested without sockets (unit/app-pools.test.ts).

/** Every pool has a request in flight and the cap is reached: the request is refused (503). */
export class AppPoolsFull extends Error {
  override readonly name = "AppPoolsFull";
  constructor(max: number) {
    super(`the gateway has requests in flight at the app for ${max} users at once (its limit); try again in a moment`);
  }
}

export interface Lease<P> {
  readonly pool: P;
  /** The request is over (answered to its end, failed or let go); idempotent. */
  release(): void;
}

export interface UserPools<P> {
  /** The pool for `user` (null: a request without a user), held as in use until the lease is released. Throws AppPoolsFull. */
  acquire(user: string | null): Lease<P>;
  /** Close every pool with nothing in flight for idleMs; returns how many were closed. Also runs by itself every idleMs / 2. */
  sweep(): number;
  /** Pools kept (the anonymous pool included). */
  readonly size: number;
  /** Close every pool (and stop the sweeping timer). */
  close(): Promise<void>;
}

export interface UserPoolsOptions<P> {
  readonly maxPools: number;
  readonly idleMs: number;
  readonly create: (user: string | null) => P;
  /** Close a pool that has nothing in flight (evicted, idle, or at close()). */
  readonly close: (pool: P) => Promise<void>;
  /** Unix ms; injected by tests. */
  readonly now?: () => number;
  /** Sweep every idleMs / 2 on an unref'd timer (default true; tests call sweep()). */
  readonly timer?: boolean;
}

interface Entry<P> {
  readonly pool: P;
  inFlight: number;
  /** When the last request started or ended. */
  lastUsed: number;
}

export function createUserPools<P>(options: UserPoolsOptions<P>): UserPools<P> {
  const now = options.now ?? Date.now;
  /** Users' pools, least recently used first (a Map keeps insertion order; use moves an entry to the end). */
  const byUser = new Map<string, Entry<P>>();
  let newest: string | null = null;
  let anonymous: Entry<P> | null = null;
  let closed = false;

  const drop = (e: Entry<P>) => void options.close(e.pool).catch(() => undefined);

  function lease(e: Entry<P>): Lease<P> {
    e.inFlight++;
    e.lastUsed = now();
    let released = false;
    return {
      pool: e.pool,
      release() {
        if (released) return;
        released = true;
        e.inFlight--;
        e.lastUsed = now();
      },
    };
  }

  /** Make room for one more user's pool: close the least recently used one with nothing in flight. */
  function evictOne(): boolean {
    for (const [user, e] of byUser) {
      if (e.inFlight > 0) continue;
      byUser.delete(user);
      if (newest === user) newest = null;
      drop(e);
      return true;
    }
    return false;
  }

  const pools: UserPools<P> = {
    acquire(user) {
      if (closed) throw new Error("the app's connection pools are closed");
      if (user === null) return lease((anonymous ??= { pool: options.create(null), inFlight: 0, lastUsed: now() }));
      let e = byUser.get(user);
      if (e === undefined) {
        if (byUser.size >= options.maxPools && !evictOne()) throw new AppPoolsFull(options.maxPools);
        e = { pool: options.create(user), inFlight: 0, lastUsed: now() };
        byUser.set(user, e);
        newest = user;
      } else if (newest !== user) {
        byUser.delete(user);
        byUser.set(user, e);
        newest = user;
      }
      return lease(e);
    },
    sweep() {
      const before = now() - options.idleMs;
      let n = 0;
      for (const [user, e] of byUser) {
        if (e.inFlight > 0 || e.lastUsed > before) continue;
        byUser.delete(user);
        if (newest === user) newest = null;
        drop(e);
        n++;
      }
      if (anonymous && anonymous.inFlight === 0 && anonymous.lastUsed <= before) {
        drop(anonymous);
        anonymous = null;
        n++;
      }
      return n;
    },
    get size() {
      return byUser.size + (anonymous ? 1 : 0);
    },
    async close() {
      closed = true;
      if (every) clearInterval(every);
      const all = [...byUser.values(), ...(anonymous ? [anonymous] : [])];
      byUser.clear();
      anonymous = null;
      await Promise.all(all.map((e) => options.close(e.pool).catch(() => undefined)));
    },
  };
  const every = options.timer === false ? undefined : setInterval(() => pools.sweep(), Math.max(1000, options.idleMs / 2));
  every?.unref();
  return pools;
}
