// otpgate server: loads the server (dist/otpgate-server.cjs in the bundle; see server-main.ts).

import type { ExitCode } from "../../../core/errors.js";
import type { Output } from "../output.js";

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { run: runServer } = await import("./server-main.js");
  return runServer(argv, io, "server");
}
