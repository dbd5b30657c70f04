// A password typed at the terminal without echo (raw mode: Enter ends it, Backspace deletes,
// Ctrl-C or Ctrl-D on an empty line cancels).

import type { ReadStream } from "node:tty";
import type { Output } from "./output.js";
import { Cancelled } from "./prompt.js";

export function readHidden(io: Output, prompt: string): Promise<string> {
  const input = process.stdin as ReadStream;
  // Echo off before the prompt appears: whatever is typed after seeing it stays hidden.
  input.setRawMode(true);
  io.prompt(prompt);
  return new Promise((resolve, reject) => {
    const chars: string[] = [];
    const finish = (err: Error | null) => {
      input.removeListener("data", onData);
      input.setRawMode(false);
      input.pause();
      io.out("");
      if (err) reject(err);
      else resolve(chars.join(""));
    };
    const onData = (chunk: string) => {
      for (const c of chunk) {
        if (c === "\r" || c === "\n") return finish(null);
        if (c === "\u0003" || (c === "\u0004" && chars.length === 0)) return finish(new Cancelled("cancelled"));
        if (c === "\u007f" || c === "\b") chars.pop();
        else if (c === "\u0015")
          chars.length = 0; // Ctrl-U: start again
        else if (c >= " ") chars.push(c);
      }
    };
    input.setEncoding("utf8");
    input.on("data", onData);
    input.resume();
  });
}
