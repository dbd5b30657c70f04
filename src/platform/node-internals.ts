// Node's private bindings, in one place. The short-lived login path (otpgate pam, the RStudio
// helper) uses two of them to skip the start-up cost of the public modules built on them:
// `pipe_wrap` (what node:net uses) to bind the lock's abstract socket, ~3 ms less than loading
// node:net; `process_wrap` (what node:child_process uses) to start logger(1), ~4 ms less. Both are
// undocumented, so each use has a public-API fallback, and they can be turned off:
// - OTPGATE_NO_NODE_INTERNALS=1 in the environment;
// - usePublicApisOnly(), which the resident processes (otpgate server/radius, the gateway) call at
//   start: start-up cost does not matter there, a private binding changing under them would;
// - deprecations made loud (--throw-deprecation, --pending-deprecation, ...), since
//   process.binding() is itself deprecated.
// Nothing else in otpgate may call process.binding() (the architecture test can grep for it).

// A process-wide mark, not a module variable: the server and the gateway are bundles of their own
// (dist/otpgate-server.cjs, dist/otpgate-gateway.cjs), each with its own copy of this module, and the
// switch must hold for every copy loaded in the process.
const PUBLIC_ONLY = Symbol.for("otpgate.node-internals.public-only");
const marks = globalThis as { [PUBLIC_ONLY]?: true };

/** From now on, this process uses public APIs only (idempotent, cannot be undone). */
export function usePublicApisOnly(): void {
  marks[PUBLIC_ONLY] = true;
}

/** Whether the private bindings may be used in this process now. */
export function nodeInternalsAllowed(): boolean {
  if (marks[PUBLIC_ONLY] === true || process.env.OTPGATE_NO_NODE_INTERNALS === "1") return false;
  return !(process.execArgv.some((a) => a.includes("deprecation")) || (process.env.NODE_OPTIONS ?? "").includes("deprecation"));
}

type Binding = (name: string) => unknown;

function binding(name: "pipe_wrap" | "process_wrap"): unknown {
  if (!nodeInternalsAllowed()) return null;
  try {
    return (process as unknown as { binding: Binding }).binding(name);
  } catch {
    return null;
  }
}

/** A bound (or failed) server pipe of pipe_wrap. */
export interface PipeHandle {
  /** 0, or a negative libuv error (-98 EADDRINUSE). */
  bind(name: string): number;
  close(): void;
}

/** A new server pipe handle through pipe_wrap, or null when internals are off or unavailable. */
export function internalPipeServer(): PipeHandle | null {
  const b = binding("pipe_wrap") as { Pipe?: new (type: number) => PipeHandle; constants?: { SERVER?: number } } | null;
  if (typeof b?.Pipe !== "function" || typeof b.constants?.SERVER !== "number") return null;
  try {
    return new b.Pipe(b.constants.SERVER);
  } catch {
    return null;
  }
}

interface ProcessHandle {
  onexit: () => void;
  spawn(options: object): number;
  unref(): void;
}

/**
 * Start `file args` detached with stdio ignored and `env`, without waiting, through process_wrap.
 * true: started; false: internals are off or unavailable, or the start failed (use the fallback).
 */
export function internalSpawnDetached(file: string, args: readonly string[], env: Readonly<Record<string, string>>): boolean {
  const b = binding("process_wrap") as { Process?: new () => ProcessHandle } | null;
  if (typeof b?.Process !== "function") return false;
  try {
    const handle = new b.Process();
    handle.onexit = () => {};
    const err = handle.spawn({
      file,
      args: [file, ...args],
      envPairs: Object.entries(env).map(([k, v]) => `${k}=${v}`),
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
