// Has the running sshd read its configuration since it last changed? sshd (re)reads it when it
// starts and on SIGHUP, where it re-executes itself under the same pid and writes its pid file
// again; so the later of the process's start and the pid file's mtime is when the running
// configuration was read. Any sshd_config or Include'd file changed after that is not live yet.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export interface StaleConfig {
  readonly pid: number;
  /** Unix ms when the running sshd last read its configuration. */
  readonly loadedAtMs: number;
  /** Files changed after that, newest first, with their mtimes (unix ms). */
  readonly changed: readonly { readonly path: string; readonly mtimeMs: number }[];
}

const glob = (pattern: string) =>
  new RegExp(
    "^" +
      pattern
        .replace(/[.+^${}()|\\]/g, "\\$&")
        .replace(/\*/g, ".*")
        .replace(/\?/g, ".") +
      "$",
  );

/** sshd_config and every file its Include lines name (recursively; relative to /etc/ssh like sshd). */
export function sshdConfigFiles(config: string, mapPath: (p: string) => string, depth = 0): string[] {
  let text: string;
  try {
    text = readFileSync(config, "latin1");
  } catch {
    return [];
  }
  const files = [config];
  if (depth > 8) return files;
  for (const m of text.matchAll(/^[ \t]*include[ \t]+(.+)$/gim)) {
    for (const raw of m[1]!.trim().split(/\s+/)) {
      const pattern = mapPath(raw.startsWith("/") ? raw : join("/etc/ssh", raw));
      const dir = dirname(pattern);
      const re = glob(basename(pattern));
      let names: string[] = [];
      try {
        names = readdirSync(dir)
          .filter((n) => re.test(n))
          .sort();
      } catch {
        names = [];
      }
      for (const n of names) files.push(...sshdConfigFiles(join(dir, n), mapPath, depth + 1));
    }
  }
  return files;
}

/** Start time of a process in unix ms (from /proc), or null. */
function processStartMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]); // field 22 of stat(5): start time in clock ticks since boot
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "latin1"))?.[1]);
    // USER_HZ is 100 on every Linux architecture Node runs on
    return Number.isFinite(ticks) && Number.isFinite(btime) ? btime * 1000 + ticks * 10 : null;
  } catch {
    return null;
  }
}

/** Null when no sshd runs from this pid file, or when it has read every file since it changed. */
export function staleSshdConfig(pidFile: string, files: readonly string[]): StaleConfig | null {
  let pid: number;
  let pidMtime: number;
  try {
    pid = Number(readFileSync(pidFile, "latin1").trim());
    pidMtime = statSync(pidFile).mtimeMs;
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const started = processStartMs(pid);
  if (started === null) return null; // no such process: nothing running to be stale
  const loadedAtMs = Math.max(started, pidMtime);
  const changed: { path: string; mtimeMs: number }[] = [];
  for (const path of files) {
    try {
      const m = statSync(path).mtimeMs;
      if (m > loadedAtMs) changed.push({ path, mtimeMs: m });
    } catch {
      // gone since it was listed
    }
  }
  changed.sort((a, b) => b.mtimeMs - a.mtimeMs);
  return changed.length ? { pid, loadedAtMs, changed } : null;
}
