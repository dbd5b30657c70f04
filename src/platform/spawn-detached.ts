// Start a helper program and do not wait for it (used to hand a log line to logger(1)). Node's
// child_process costs ~4 ms of start-up on the login path, so the private binding that
// child_process itself uses is tried first (platform/node-internals: off in resident processes
// and with OTPGATE_NO_NODE_INTERNALS=1); child_process.spawn is the fallback.

import type * as ChildProcess from "node:child_process";
import { builtin } from "./builtin.js";
import { internalSpawnDetached } from "./node-internals.js";

const ENV = { PATH: "/usr/bin:/bin" };

export function spawnDetached(file: string, args: string[]): void {
  if (internalSpawnDetached(file, args, ENV)) return;
  try {
    builtin<typeof ChildProcess>("node:child_process").spawn(file, args, { detached: true, stdio: "ignore", env: ENV }).unref();
  } catch {
    // logging must never break a login
  }
}
