// Questions on a terminal, answered line by line (the terminal stays in cooked mode, so Ctrl-C
// ends the process before anything is written and Ctrl-D is end of input).

import { createInterface } from "node:readline";
import type { Output } from "./output.js";

export class Cancelled extends Error {
  override name = "Cancelled";
}

export interface Prompter {
  /** One line of input, or throws Cancelled at end of input. */
  line(prompt: string): Promise<string>;
  /** A y/n question like google-authenticator asks it: blank line first, re-asked until y or n. */
  yesNo(question: string): Promise<boolean>;
  close(): void;
}

export function terminalPrompter(io: Output): Prompter {
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const line = async (prompt: string): Promise<string> => {
    io.prompt(prompt);
    const next = await lines.next();
    if (next.done) {
      io.out("");
      throw new Cancelled("end of input");
    }
    return next.value;
  };
  return {
    line,
    async yesNo(question) {
      let answer = await line(`\n${question} (y/n) `);
      for (;;) {
        const c = answer.trimStart()[0];
        if (c === "y" || c === "Y") return true;
        if (c === "n" || c === "N") return false;
        answer = await line(`${question} (y/n) `);
      }
    },
    close: () => rl.close(),
  };
}
