// Where the CPU time went during a benchmark phase, from /proc: the whole machine (busy share of
// all CPUs), one process (the otpgate server), and a process with its children (the postmaster and
// its backends). Linux only; clock ticks are USER_HZ (100 on Linux, getconf CLK_TCK).

import { readdirSync, readFileSync } from "node:fs";

const TICK_MS = 10;

/** utime + stime of `pid` in ms (with `children`: plus cutime + cstime, its children that exited), or 0 when it is gone. */
export function processCpuMs(pid: number, children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the command name, which is in parentheses and may contain blanks.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const own = Number(rest[11]) + Number(rest[12]);
    return (own + (children ? Number(rest[13]) + Number(rest[14]) : 0)) * TICK_MS;
  } catch {
    return 0;
  }
}

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

/** CPU ms of `pid`, its current children and the children it has reaped (the postmaster and its backends). */
export function treeCpuMs(pid: number): number {
  let total = processCpuMs(pid, true);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const child = Number(entry);
    if (parentOf(child) === pid) total += processCpuMs(child);
  }
  return total;
}

/** Busy and total jiffies of all CPUs together (/proc/stat's first line). */
export function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync("/proc/stat", "latin1").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!;
  return { busy: total - idle, total };
}

/** The machine's busy share between two readings, 0..1. */
export function busyShare(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  const total = after.total - before.total;
  return total > 0 ? (after.busy - before.busy) / total : 0;
}
