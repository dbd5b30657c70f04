// otpgate radius: the old name of otpgate server (see server-main.ts), kept for units and scripts
// that use it. Same options; the API socket only with --socket.

import type { ExitCode } from "../../../core/errors.js";
import type { Output } from "../output.js";

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { run: runServer } = await import("./server-main.js");
  return runServer(argv, io, "radius");
}
