// Account lookups for a resident server, never blocking its event loop: /etc/passwd and /etc/group
// read asynchronously and re-read only when they change; names not found there are asked of NSS
// (LDAP, sssd, …) through `getent passwd NAME` as an asynchronous child process, a few at a time,
// and the answer - found or not - is cached for a while. Under a flood of unknown names the number
// of getent processes is bounded by the cache, the concurrency limit and the queue length.

import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { groupsFromText } from "./groups.js";
import type { UserAccount } from "./users.js";

export interface CachedAccount extends UserAccount {
  readonly groups: readonly number[];
}

/**
 * null: no such user (getent said so: exit 2, or the name is not one); "busy": cannot tell now -
 * too many lookups waiting, or getent failed, timed out or was killed (an NSS backend such as LDAP
 * down): answer later, never "no such user" (a session must not end on it), and nothing is cached.
 */
export type LookupResult = CachedAccount | null | "busy";

export interface UserCacheOptions {
  readonly passwdPath?: string;
  readonly groupPath?: string;
  readonly getent?: string;
  /** How long a getent answer counts (default 60 s found, 30 s not found). */
  readonly ttlMs?: number;
  readonly negativeTtlMs?: number;
  readonly maxEntries?: number;
  readonly maxGetent?: number;
  readonly maxQueued?: number;
  /**
   * Most getent processes started per second (at most 2 in a burst); beyond it the answer is
   * "busy". Starting a process blocks the event loop for a few milliseconds (fork; 20-40 ms on a
   * loaded machine), so a server that must stay responsive under a flood of unknown names bounds
   * the rate, and the burst, too.
   * Default: no rate limit (the concurrency limit only).
   */
  readonly maxGetentPerSecond?: number;
  /** How long one getent may take before it is killed and the answer is "cannot tell" (default 5 s). */
  readonly getentTimeoutMs?: number;
  readonly nowMs: () => number;
}

const VALID_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.@-]*\$?$/;

function parsePasswdLine(line: string): UserAccount | null {
  const f = line.split(":");
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!f[0] || !Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === "" || f[3] === "") return null;
  return { name: f[0], uid, gid, home: f[5] ?? "" };
}

interface FileCache<T> {
  value: T;
  key: string;
  checkedAt: number;
}

export class UserCache {
  private passwd: FileCache<Map<string, UserAccount>> | null = null;
  private group: FileCache<string> | null = null;
  private readonly nss = new Map<string, { at: number; account: UserAccount | null }>();
  private readonly pending = new Map<string, Promise<UserAccount | null | "busy">>();
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private spawnTokens = Number.POSITIVE_INFINITY;
  private spawnTokensAt = 0;
  /** getent processes started so far (for tests and figures). */
  spawned = 0;

  constructor(private readonly options: UserCacheOptions) {}

  async lookup(name: string): Promise<LookupResult> {
    if (name.length > 256 || !VALID_NAME.test(name) || /^[0-9]+$/.test(name)) return null;
    const local = (await this.passwdFile()).get(name);
    const account = local ?? (await this.fromNss(name));
    if (account === "busy" || account === null) return account;
    const groupText = await this.groupFile();
    return { ...account, groups: groupsFromText(groupText, account.name, account.gid) };
  }

  private async fromNss(name: string): Promise<UserAccount | null | "busy"> {
    const now = this.options.nowMs();
    const hit = this.nss.get(name);
    if (hit && now - hit.at < (hit.account ? (this.options.ttlMs ?? 60_000) : (this.options.negativeTtlMs ?? 30_000))) return hit.account;
    const inFlight = this.pending.get(name);
    if (inFlight) return inFlight;
    if (this.running >= (this.options.maxGetent ?? 4) && this.queue.length >= (this.options.maxQueued ?? 32)) return "busy";
    if (!this.takeSpawnToken(now)) return "busy";
    const promise = this.getent(name).then((account) => {
      this.pending.delete(name);
      if (account === "busy") return account; // cannot tell: asked again next time, never cached
      if (this.nss.size >= (this.options.maxEntries ?? 4096)) this.nss.delete(this.nss.keys().next().value as string);
      this.nss.delete(name);
      this.nss.set(name, { at: this.options.nowMs(), account });
      return account;
    });
    this.pending.set(name, promise);
    return promise;
  }

  private takeSpawnToken(now: number): boolean {
    const rate = this.options.maxGetentPerSecond;
    if (rate === undefined) return true;
    const burst = Math.min(2, rate);
    this.spawnTokens = Math.min(burst, (this.spawnTokens === Number.POSITIVE_INFINITY ? burst : this.spawnTokens) + (Math.max(0, now - this.spawnTokensAt) * rate) / 1000);
    this.spawnTokensAt = now;
    if (this.spawnTokens < 1) return false;
    this.spawnTokens -= 1;
    return true;
  }

  /** getent passwd NAME: the account; null only when getent says there is none (exit 2); "busy" when it cannot tell. */
  private async getent(name: string): Promise<UserAccount | null | "busy"> {
    if (this.running >= (this.options.maxGetent ?? 4)) await new Promise<void>((go) => this.queue.push(go));
    this.running++;
    this.spawned++;
    try {
      const out = await new Promise<string | null | "busy">((resolve) =>
        execFile(this.options.getent ?? "/usr/bin/getent", ["passwd", "--", name], { encoding: "utf8", timeout: this.options.getentTimeoutMs ?? 5000, killSignal: "SIGKILL" }, (err, stdout) => {
          if (!err) return resolve(stdout);
          // getent exits 2 for "not found"; anything else (1, 3: NSS or argument trouble; a signal,
          // the timeout, getent missing) says nothing about the user.
          const e = err as { code?: unknown; signal?: unknown; killed?: boolean };
          resolve(e.code === 2 && !e.signal && !e.killed ? null : "busy");
        }),
      );
      if (out === null || out === "busy") return out;
      const account = parsePasswdLine(out.trim());
      return account && account.name === name ? account : null;
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  /** One check of a file at a time: a burst of lookups while it is being re-read shares that read. */
  private readonly loading = new Map<"passwd" | "group", Promise<unknown>>();

  private shared<T>(which: "passwd" | "group", load: () => Promise<T>): Promise<T> {
    let p = this.loading.get(which) as Promise<T> | undefined;
    if (!p) {
      p = load().finally(() => this.loading.delete(which));
      this.loading.set(which, p);
    }
    return p;
  }

  private passwdFile(): Promise<Map<string, UserAccount>> {
    const cached = this.passwd;
    if (cached && this.options.nowMs() - cached.checkedAt < 1000) return Promise.resolve(cached.value);
    return this.shared("passwd", () => this.loadPasswd());
  }

  private groupFile(): Promise<string> {
    const cached = this.group;
    if (cached && this.options.nowMs() - cached.checkedAt < 1000) return Promise.resolve(cached.value);
    return this.shared("group", () => this.loadGroup());
  }

  private async loadPasswd(): Promise<Map<string, UserAccount>> {
    const text = await this.fresh("passwd", this.options.passwdPath ?? "/etc/passwd");
    if (text !== null) {
      const map = new Map<string, UserAccount>();
      for (const line of text.value.split("\n")) {
        const u = parsePasswdLine(line);
        if (u && !map.has(u.name)) map.set(u.name, u);
      }
      this.passwd = { value: map, key: text.key, checkedAt: text.checkedAt };
    }
    return this.passwd?.value ?? new Map();
  }

  private async loadGroup(): Promise<string> {
    const text = await this.fresh("group", this.options.groupPath ?? "/etc/group");
    if (text !== null) this.group = text;
    return this.group?.value ?? "";
  }

  /** The file's text when it changed since last time (checked at most once a second), else null. */
  private async fresh(which: "passwd" | "group", path: string): Promise<FileCache<string> | null> {
    const cached = which === "passwd" ? this.passwd : this.group;
    const now = this.options.nowMs();
    if (cached && now - cached.checkedAt < 1000) return null;
    try {
      const st = await stat(path);
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
      if (cached && cached.key === key) {
        cached.checkedAt = now;
        return null;
      }
      return { value: await readFile(path, "utf8"), key, checkedAt: now };
    } catch {
      return null;
    }
  }
}
