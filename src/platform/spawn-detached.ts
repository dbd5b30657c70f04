// Start a helper program and do not wait for it (used to hand a log line to logger(1)). Node's
// child_process costs ~4 ms of start-up on the login path, so the process_wrap binding that
// child_process itself uses is tried first; child_process is the fallback.

import type * as ChildProcess from "node:child_process";
import { builtin } from "./builtin.js";

interface ProcessHandle {
  onexit: () => void;
  spawn(options: object): number;
  unref(): void;
}

function viaBinding(file: string, args: string[]): boolean {
  try {
    const { Process } = (process as unknown as { binding(name: string): { Process: new () => ProcessHandle } }).binding("process_wrap");
    const handle = new Process();
    handle.onexit = () => {};
    const err = handle.spawn({
      file,
      args: [file, ...args],
      envPairs: ["PATH=/usr/bin:/bin"],
      stdio: [{ type: "ignore" }, { type: "ignore" }, { type: "ignore" }],
      detached: true,
      windowsHide: false,
      windowsVerbatimArguments: false,
    });
    handle.unref();
    return err === 0;
  } catch {
    return false;
  }
}

export function spawnDetached(file: string, args: string[]): void {
  const loud = process.execArgv.some((a) => a.includes("deprecation")) || (process.env.NODE_OPTIONS ?? "").includes("deprecation");
  if (!loud && viaBinding(file, args)) return;
  try {
    builtin<typeof ChildProcess>("node:child_process").spawn(file, args, { detached: true, stdio: "ignore", env: { PATH: "/usr/bin:/bin" } }).unref();
  } catch {
    // logging must never break a login
  }
}
