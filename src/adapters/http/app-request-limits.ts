// What one user may hold at the app (red team 1, F3: one signed-in user's slow requests held every
// app connection and everyone else waited). Each user has limits.app_requests_per_user places; a
// request holds one from before it is sent until its answer has been sent to the client, has failed
// or has been let go. A request body toward the app may pause at most limits.app_body_idle_timeout
// between two chunks; a longer pause fails the app request (the client gets 408).
// All users together hold at most limits.app_connections app connections in use (requests at the
// app, open tunnels, upgrades in flight: red team 2, F4), so that many users' requests and tunnels
// cannot take the gateway's file descriptors (LimitNOFILE) from everyone else's logins.

import { isClientGone } from "./client-gone.js";
import type { ResponseBody } from "./gateway-types.js";

/** A body that pauses too long between chunks on its way to the app. */
export class BodyIdleError extends Error {
  override readonly name = "BodyIdleError";
  constructor(ms: number) {
    super(`the request body paused for more than ${ms} ms on its way to the app`);
  }
}

export interface UserPlaces {
  /** A place for `user`, or null when the user has `max` requests at the app already. The release function is idempotent. */
  take(user: string): (() => void) | null;
  /** Places in use (all users). */
  readonly size: number;
}

export function createUserPlaces(max: number): UserPlaces {
  const inUse = new Map<string, number>();
  let total = 0;
  return {
    take(user) {
      const n = inUse.get(user) ?? 0;
      if (n >= max) return null;
      inUse.set(user, n + 1);
      total++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        total--;
        const left = (inUse.get(user) ?? 1) - 1;
        if (left <= 0) inUse.delete(user);
        else inUse.set(user, left);
      };
    },
    get size() {
      return total;
    },
  };
}

export interface Places {
  /** A place, or null when `max` are in use. The release function is idempotent. */
  take(): (() => void) | null;
  /** Places in use. */
  readonly size: number;
}

/** At most `max` places at once (all users together). */
export function createPlaces(max: number): Places {
  let total = 0;
  return {
    take() {
      if (total >= max) return null;
      total++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        total--;
      };
    },
    get size() {
      return total;
    },
  };
}

/** The body, failing with BodyIdleError when no chunk arrives within `ms` of the previous one (or of the start). */
export function idleLimited(body: AsyncIterable<Uint8Array>, ms: number): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const it = body[Symbol.asyncIterator]();
      try {
        for (;;) {
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new BodyIdleError(ms)), ms);
          });
          late.catch(() => undefined);
          let r: IteratorResult<Uint8Array>;
          try {
            r = await Promise.race([it.next(), late]);
          } finally {
            clearTimeout(timer);
          }
          if (r.done) return;
          yield r.value;
        }
      } finally {
        void it.return?.();
      }
    },
  };
}

/** Where a streamed body is written (the shape of the shell's sink). */
interface Sink {
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(error?: Error): void;
  once(event: "drain", listener: () => void): unknown;
}

/** A body the shell writes straight into the client's response (upstream.ts), or cancels. */
interface Pipeable extends AsyncIterable<Uint8Array> {
  pipeTo(sink: Sink): void;
  cancel(): void;
}

const isPipeable = (b: object): b is Pipeable => typeof (b as Partial<Pipeable>).pipeTo === "function" && typeof (b as Partial<Pipeable>).cancel === "function";

/**
 * The response body, calling `release` once it has been sent to its end, has failed, or has been
 * let go (cancelled, destroyed, its iteration stopped). A body already in memory releases at once.
 * `failed` learns of a body that failed after its head (the app's fault, e.g. a 204 with a
 * Content-Length: red team 2, F5), never of a client that went away (ClientGone).
 */
export function releasedWhenSent<B extends ResponseBody>(body: B, release: () => void, failed: (err: Error) => void = () => undefined): B {
  const fail = (err: unknown) => {
    if (!isClientGone(err)) failed(err instanceof Error ? err : new Error(String(err)));
  };
  if (body === null || typeof body === "string" || body instanceof Uint8Array) {
    release();
    return body;
  }
  if (isPipeable(body)) {
    const inner: Pipeable = body;
    const wrapped: Pipeable = {
      pipeTo(sink) {
        inner.pipeTo({
          write: (c) => sink.write(c),
          end: () => (release(), sink.end()),
          destroy: (e) => {
            release();
            if (e) fail(e);
            sink.destroy(e);
          },
          once: (event, listener) => sink.once(event, listener),
        });
      },
      cancel() {
        release();
        inner.cancel();
      },
      async *[Symbol.asyncIterator]() {
        try {
          yield* inner;
        } catch (err) {
          fail(err);
          throw err;
        } finally {
          release();
        }
      },
    };
    return wrapped as unknown as B;
  }
  const iterable = body as AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => void };
  const wrapped = {
    async *[Symbol.asyncIterator]() {
      try {
        yield* iterable;
      } catch (err) {
        fail(err);
        throw err;
      } finally {
        release();
      }
    },
    // The shell destroys a body it will not read (HEAD): let go of the place and of the app's body.
    destroy(err?: Error) {
      release();
      iterable.destroy?.(err);
    },
  };
  return wrapped as unknown as B;
}
