// Exclusive per-account lock held by the process itself: a Linux abstract-namespace Unix socket.
// Binding the name is atomic; the kernel releases it when the process exits, is killed (-9) or
// crashes, so there is no lock file to leave behind and no stale lock to recover. The name is a
// hash over the state file's location and its secret line, so only someone who can read the
// secret can compute it (another local user cannot squat it to block logins).

import { createHash } from "node:crypto";
import { createServer, type Server } from "node:net";
import { LockTimeoutError } from "../core/errors.js";

export interface HeldLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** Give up after this long (default 5 s). */
  readonly timeoutMs?: number;
}

export function lockName(parts: readonly string[]): string {
  const h = createHash("sha256");
  h.update("otpgate-lock-v1");
  for (const p of parts) h.update("\0").update(p, "latin1");
  return `\0otpgate-${h.digest("hex").slice(0, 48)}`;
}

function tryBind(name: string): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    const onError = (err: NodeJS.ErrnoException) => {
      server.removeListener("listening", onListening);
      if (err.code === "EADDRINUSE") resolve(null);
      else reject(err);
    };
    const onListening = () => {
      server.removeListener("error", onError);
      resolve(server);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ path: name, exclusive: true });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function acquireLock(name: string, options: LockOptions = {}): Promise<HeldLock> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let delay = 2;
  for (;;) {
    const server = await tryBind(name);
    if (server) {
      return {
        release: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    if (Date.now() >= deadline) {
      throw new LockTimeoutError(
        "another login for this account has held its lock for too long; try again, and if it persists look for a hung otpgate process (ps -ef | grep otpgate)",
      );
    }
    await sleep(delay + Math.floor(Math.random() * delay));
    delay = Math.min(delay * 2, 50);
  }
}
