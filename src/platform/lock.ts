// Exclusive per-account lock held by the process itself: a bound Linux abstract-namespace Unix
// socket. Binding the name is atomic; the kernel releases it when the process exits, is killed (-9)
// or crashes, so there is no lock file to leave behind and no stale lock to recover.
//
// Abstract names are NOT private: every local user reads the bound ones in /proc/net/unix and can
// bind a name first. A plain acquireLock therefore only serves locks where a squatter merely makes
// otpgate wait (otpgate passwd, the gateway's own files). The state file's lock, which every login
// takes, is platform/account-lock: its holder proves it read the secret, and a squatted name is
// skipped. lockName is that lock's first name (generation 0).
//
// Speed: node:net pulls ~60 internal modules (~3 ms of start-up on the login path), so the socket
// is bound through a private binding of Node (platform/node-internals), which is what node:net uses
// underneath; where internals are off (resident processes, OTPGATE_NO_NODE_INTERNALS=1, loud
// deprecations) or unavailable (a future Node), a node:net server on the same abstract name.
// Both bind the same kernel name, so the two paths exclude each other.

import type * as Net from "node:net";
import { LockTimeoutError } from "../core/errors.js";
import { createSha1Hmac } from "../core/sha1.js";
import { builtin } from "./builtin.js";
import { internalPipeServer } from "./node-internals.js";

export interface HeldLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** Give up after this long (default 5 s). */
  readonly timeoutMs?: number;
  /** Use node:net even where the faster binding works (tests cover both paths). */
  readonly viaNet?: boolean;
}

/** The abstract socket name for a state file: HMAC(key = its secret line, location parts). */
export function lockName(secretLine: string, location: readonly string[]): string {
  const mac = createSha1Hmac(Buffer.from("otpgate-lock-v1\0" + secretLine, "latin1"));
  const digest = mac.mac(Buffer.from(location.join("\0"), "latin1"));
  return `\0otpgate-${Buffer.from(digest).toString("hex")}`;
}

type TryBind = (name: string) => Promise<HeldLock | null>;

const EADDRINUSE = -98;

/** One bind attempt through the private binding; undefined when internals are off or unavailable. */
async function bindInternal(name: string): Promise<HeldLock | null | undefined> {
  const handle = internalPipeServer();
  if (!handle) return undefined;
  const err = handle.bind(name);
  if (err === 0) return { release: async () => handle.close() };
  handle.close();
  if (err === EADDRINUSE) return null;
  throw new Error(`cannot bind the lock socket (uv error ${err})`);
}

function netBinder(): TryBind {
  const net = builtin<typeof Net>("node:net");
  return (name) =>
    new Promise((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once("error", (err: NodeJS.ErrnoException) => (err.code === "EADDRINUSE" ? resolve(null) : reject(err)));
      server.once("listening", () => resolve({ release: () => new Promise<void>((done) => server.close(() => done())) }));
      server.listen({ path: name, exclusive: true });
    });
}

let portable: TryBind | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function acquireLock(name: string, options: LockOptions = {}): Promise<HeldLock> {
  const binder: TryBind = async (n) => {
    const held = options.viaNet ? undefined : await bindInternal(n);
    return held === undefined ? (portable ??= netBinder())(n) : held;
  };
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let delay = 2;
  for (;;) {
    const held = await binder(name);
    if (held) return held;
    if (Date.now() >= deadline) {
      throw new LockTimeoutError("another login for this account has held its lock for too long; try again, and if it persists look for a hung otpgate process (ps -ef | grep otpgate)");
    }
    await sleep(delay + Math.floor(Math.random() * delay));
    delay = Math.min(delay * 2, 50);
  }
}
