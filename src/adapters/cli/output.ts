// The only place the CLI writes to the terminal. Plain writeSync on fds 1 and 2: initialising
// process.stdout/stderr streams costs start-up time on the login path.

import { writeSync } from "node:fs";

export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** Text without a line break (a prompt). */
  prompt(text: string): void;
}

function writeAll(fd: number, text: string): void {
  const data = Buffer.from(text);
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") return;
    }
  }
}

export const processOutput: Output = {
  out: (line) => writeAll(1, line + "\n"),
  err: (line) => writeAll(2, line + "\n"),
  prompt: (text) => writeAll(1, text),
};
