// Bounded read of standard input: at most `limit` bytes, gives up after `timeoutMs`.

import { read } from "node:fs";
import { UsageError } from "../../core/errors.js";

export function readStdin(limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.alloc(limit + 1);
    let got = 0;
    const timer = setTimeout(() => reject(new UsageError(`no input on standard input after ${timeoutMs / 1000} s; pass the code as an argument or pipe it in`)), timeoutMs);
    timer.unref();
    const step = () => {
      read(0, buf, got, buf.length - got, null, (err, n) => {
        if (err) {
          if ((err as NodeJS.ErrnoException).code === "EAGAIN") return void setTimeout(step, 5);
          if ((err as NodeJS.ErrnoException).code === "EOF") n = 0;
          else {
            clearTimeout(timer);
            return reject(new UsageError(`cannot read standard input (${(err as NodeJS.ErrnoException).code})`));
          }
        }
        got += n;
        if (n === 0 || got > limit || buf.subarray(0, got).includes(0x0a)) {
          clearTimeout(timer);
          resolve(buf.subarray(0, got));
        } else step();
      });
    };
    step();
  });
}
