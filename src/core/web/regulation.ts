// Brute-force regulation (after Authelia's): more than `maxRetries` failures for one key (a user,
// or a client address) within `findTimeMs` bans that key for `banTimeMs`. Bans are per key, so an
// attacker hammering one account from one address cannot lock its owner out from everywhere:
// the owner's address is not banned unless it failed too. Pure: the caller passes the time.

export interface RegulationPolicy {
  readonly maxRetries: number;
  readonly findTimeMs: number;
  readonly banTimeMs: number;
}

export const DEFAULT_REGULATION: RegulationPolicy = { maxRetries: 5, findTimeMs: 2 * 60_000, banTimeMs: 5 * 60_000 };

interface Entry {
  failures: number[];
  bannedUntil: number;
}

export class Regulator {
  private readonly entries = new Map<string, Entry>();

  constructor(readonly policy: RegulationPolicy = DEFAULT_REGULATION) {}

  /** Milliseconds left of a ban on `key`, or 0. */
  bannedFor(key: string, now: number): number {
    const e = this.entries.get(key);
    return e && e.bannedUntil > now ? e.bannedUntil - now : 0;
  }

  /** Any of the keys banned? (A login is refused when its user or its address is.) */
  isBanned(keys: readonly string[], now: number): boolean {
    return keys.some((k) => this.bannedFor(k, now) > 0);
  }

  /** Record a failed attempt for every key; returns the keys that became banned. */
  fail(keys: readonly string[], now: number): string[] {
    const banned: string[] = [];
    for (const key of keys) {
      const e = this.entries.get(key) ?? { failures: [], bannedUntil: 0 };
      e.failures = e.failures.filter((t) => t > now - this.policy.findTimeMs);
      e.failures.push(now);
      if (e.failures.length > this.policy.maxRetries && e.bannedUntil <= now) {
        e.bannedUntil = now + this.policy.banTimeMs;
        e.failures = [];
        banned.push(key);
      }
      this.entries.set(key, e);
    }
    this.prune(now);
    return banned;
  }

  /** A success clears the user's failures (not the address's). */
  succeed(key: string): void {
    this.entries.delete(key);
  }

  /** Forget entries with no recent failure and no running ban (bounded memory). */
  prune(now: number): void {
    if (this.entries.size < 10_000) return;
    for (const [k, e] of this.entries) {
      if (e.bannedUntil <= now && e.failures.every((t) => t <= now - this.policy.findTimeMs)) this.entries.delete(k);
    }
  }
}
