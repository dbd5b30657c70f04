// The key file as a long-running process holds it (RT1 F1): `otpgate db rotate-key --add` and the
// copy of the new file to this host happen while `otpgate server` runs, so a row under a key id the
// loaded file lacks makes the ring re-read the file (same checks as at start: readKeyFile), when its
// identity (inode, size, mtime, ctime) changed, at most once a second; reload() re-reads at once
// (SIGHUP). A file that fails the checks keeps the keys already loaded and reports the problem.

import { lstatSync } from "node:fs";
import { readKeyFile, type FleetKeys } from "./key-file.js";

const MIN_INTERVAL_MS = 1000;

const identityOf = (path: string): string => {
  try {
    const s = lstatSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code ?? "?"}`;
  }
};

export class KeyRing {
  private keys: FleetKeys;
  private identity: string;
  private lastCheckMs = -Infinity;
  /** The last reload's problem (a key-file problem, never a database one), or null. */
  problem: string | null = null;

  constructor(
    private readonly path: string,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.identity = identityOf(path);
    this.keys = readKeyFile(path);
  }

  /** The keys; when one of `needed` is missing, the file is re-read first if it changed (rate-limited). */
  get(needed: readonly string[] = []): FleetKeys {
    if (needed.some((id) => !this.keys.keys.has(id))) this.refresh(false);
    return this.keys;
  }

  /** Re-read the file if it changed (force: now, regardless of the rate limit); true when new keys were loaded. */
  refresh(force: boolean): boolean {
    const now = this.nowMs();
    if (!force && now - this.lastCheckMs < MIN_INTERVAL_MS) return false;
    this.lastCheckMs = now;
    const identity = identityOf(this.path);
    if (!force && identity === this.identity) return false;
    try {
      this.keys = readKeyFile(this.path);
      this.identity = identity;
      this.problem = null;
      return true;
    } catch (err) {
      this.problem = `the key file ${this.path} changed but cannot be used (${(err as Error).message}); the keys loaded before stay in use`;
      return false;
    }
  }
}
