// Bounded read of standard input: at most `limit` bytes (it stops early at a line break), gives up
// after `timeoutMs`. It reads through a non-blocking descriptor and polls, never with a blocking
// read in Node's thread pool: a thread stuck in read(2) would keep the process from exiting, so a
// login could hang as long as the other end keeps the pipe open.

import { closeSync, constants, openSync, readSync } from "node:fs";
import { UsageError } from "../../core/errors.js";

function timeoutError(timeoutMs: number): UsageError {
  return new UsageError(`no input on standard input after ${timeoutMs / 1000} s; pass the code as an argument or pipe it in`);
}

export async function readStdin(limit: number, timeoutMs: number): Promise<Buffer> {
  let fd: number;
  try {
    fd = openSync("/dev/stdin", constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return readBlocking(limit, timeoutMs);
  }
  const buf = Buffer.alloc(limit + 1);
  let got = 0;
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, got, buf.length - got, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "EAGAIN" && code !== "EWOULDBLOCK") throw new UsageError(`cannot read standard input (${code})`);
        if (Date.now() >= deadline) throw timeoutError(timeoutMs);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 50);
        continue;
      }
      got += n;
      if (n === 0 || got > limit || buf.subarray(0, got).includes(0x0a)) return buf.subarray(0, got);
      delay = 1;
    }
  } finally {
    closeSync(fd);
  }
}

/** Fallback where /dev/stdin cannot be reopened (a socket): Node's own non-blocking stream. */
function readBlocking(limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const input = process.stdin;
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      input.removeAllListeners("data").removeAllListeners("end").removeAllListeners("error");
      input.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).subarray(0, limit + 1));
    };
    const timer = setTimeout(() => finish(timeoutError(timeoutMs)), timeoutMs);
    input.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got > limit || d.includes(0x0a)) finish(null);
    });
    input.on("end", () => finish(null));
    input.on("error", (e: NodeJS.ErrnoException) => finish(new UsageError(`cannot read standard input (${e.code})`)));
  });
}
