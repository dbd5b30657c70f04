// RATE_LIMIT bookkeeping as the reference module does it: every attempt adds "now", the list keeps
// the stamps in [now - interval, now] (newest `attempts` of them), and more than `attempts` stamps
// in the window means this attempt is refused before its code is looked at.

import type { RateLimitSetting } from "../formats/ga-settings.js";

export interface RateLimitResult {
  /** The new RATE_LIMIT value: "n m t1 t2 ...". */
  readonly value: string;
  readonly exceeded: boolean;
}

export function applyRateLimit(setting: RateLimitSetting, now: number): RateLimitResult {
  const stamps = [now, ...setting.stamps].sort((a, b) => a - b);
  let start = 0;
  let stop = -1;
  for (let i = 0; i < stamps.length; i++) {
    const t = stamps[i]!;
    if (t < now - setting.intervalSeconds) start = i + 1;
    else if (t > now) break;
    stop = i;
  }
  let exceeded = false;
  if (stop - start + 1 > setting.attempts) {
    exceeded = true;
    start = stop - setting.attempts + 1;
  }
  const kept = stamps.slice(start, stop + 1);
  return { value: [setting.attempts, setting.intervalSeconds, ...kept].join(" "), exceeded };
}

/** Would one more attempt at `now` be refused? (For status displays; changes nothing.) */
export function isRateLimited(setting: RateLimitSetting, now: number): boolean {
  const recent = setting.stamps.filter((t) => t >= now - setting.intervalSeconds && t <= now).length;
  return recent + 1 > setting.attempts;
}
