// Load a Node built-in module on first use, so the login path does not pay for modules it does not
// need (node:crypto, node:child_process, node:tty and node:net each add milliseconds to start-up).

import { createRequire } from "node:module";

type Builtin = "node:crypto" | "node:child_process" | "node:tty" | "node:net";

export function builtin<T>(name: Builtin): T {
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  // process.getBuiltinModule exists from Node 20.16; older 20.x resolve through createRequire.
  return (get ? get(name) : createRequire("/otpgate/")(name)) as T;
}
