// Notice changes to a file made by other processes without a system call per request: a timer
// (unref'd, so it never keeps the process alive) stats the file and calls back when its identity,
// size or times changed (or it appeared or vanished). A stat still in flight skips the next tick.

import { stat } from "node:fs/promises";

export interface FileWatch {
  stop(): void;
  /** Stat now (tests; and right after our own write so it is not seen as someone else's change). */
  check(): Promise<void>;
}

export function watchFile(path: string, intervalMs: number, onChange: () => void): FileWatch {
  let last: string | undefined;
  let busy: Promise<void> | null = null;
  const check = (): Promise<void> => {
    if (busy) return busy;
    busy = stat(path, { bigint: true })
      .then(
        (st) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`,
        (err: NodeJS.ErrnoException) => `missing:${err.code}`,
      )
      .then((now) => {
        const changed = last !== undefined && now !== last;
        last = now;
        if (changed) onChange();
      })
      .finally(() => {
        busy = null;
      });
    return busy;
  };
  void check();
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), check };
}
