// Per-source token buckets for packets that arrive before anything is known about them. Pure: the
// caller passes the time. Bounded: at most `maxKeys` sources are remembered; when full, the
// longest-idle ones are forgotten (a forgotten source starts again with a full bucket, which only
// matters under a flood of distinct sources, where the per-address bucket still applies).

export interface BucketPolicy {
  /** Tokens a new source starts with and the most it can save up. */
  readonly burst: number;
  /** Tokens added per second. */
  readonly perSecond: number;
  readonly maxKeys: number;
}

export class Throttle {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** Packets refused since the last call to `takeRefused()`. */
  private refused = 0;

  constructor(private readonly policy: BucketPolicy) {}

  /** Take one token for `key`; false when its bucket is empty. */
  take(key: string, nowMs: number): boolean {
    const { burst, perSecond, maxKeys } = this.policy;
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(burst, b.tokens + ((nowMs - b.at) / 1000) * perSecond);
      b.at = nowMs;
      // Keep the map in least-recently-used order, so eviction drops idle sources.
      this.buckets.delete(key);
      this.buckets.set(key, b);
    } else {
      if (this.buckets.size >= maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
      b = { tokens: burst, at: nowMs };
      this.buckets.set(key, b);
    }
    if (b.tokens < 1) {
      this.refused++;
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  takeRefused(): number {
    const n = this.refused;
    this.refused = 0;
    return n;
  }
}
