// Time-skew learning (reference check_time_skew): a code that matches far outside the window is
// evidence; three such codes entered at consecutive steps (each at most 2 steps after the last)
// with skews within ±1 of the newest set TIME_SKEW to their average and log the user in.

import { scanNumber } from "../formats/c-scan.js";
import { getOption, setOption } from "../formats/ga-document.js";

/** The reference's search: i = 0..1499 either way, ±12.5 hours at 30-second steps. */
export const REFERENCE_SKEW_SEARCH_STEPS = 1499;

/**
 * otpgate's cap on the far-off search: ±20 steps (±10 minutes at the usual 30-second step).
 * Phones take their time from the network, so a real clock error is seconds to a few minutes;
 * ±10 minutes covers that with room. The reference's ±12.5 hours let anyone who once saw three
 * consecutive codes (over a shoulder, a screen share, a log) replay them hours later: a login, and
 * a TIME_SKEW of their choosing that locks the owner out. With the cap, such codes are stale
 * after 10 minutes, and a skew set by replay stays within ±10 minutes, from where the owner's own
 * codes (searched around the real time, not the learned skew) relearn the right skew.
 */
export const SKEW_SEARCH_STEPS = 20;

export type SkewLearning =
  /** Same code as the last piece of evidence: nothing recorded. */
  { readonly kind: "repeat" } | { readonly kind: "pending"; readonly text: string } | { readonly kind: "reset"; readonly text: string; readonly skew: number };

interface Evidence {
  readonly tm: number;
  readonly skew: number;
}

function int32(magnitude: number, negative: boolean): number {
  if (!Number.isFinite(magnitude)) return -1;
  return negative ? -magnitude | 0 : magnitude | 0;
}

/** Parse RESETTING_TIME_SKEW tokens `<step><sign><skew>`; stops at the first malformed one. */
export function parseResetting(value: string): Evidence[] {
  const out: Evidence[] = [];
  let ptr = 0;
  while (ptr < value.length && value[ptr] !== "\r" && value[ptr] !== "\n") {
    const tm = scanNumber(value, ptr);
    const sign = value[tm.end];
    if (!tm.digits || (sign !== "+" && sign !== "-")) break;
    const sk = scanNumber(value, tm.end + 1);
    const end = sk.digits ? sk.end : tm.end + 1;
    const after = value[end];
    if (after !== undefined && !" \t\r\n".includes(after)) break;
    let skew = sk.digits ? int32(sk.magnitude, sk.negative) : 0;
    if (sign === "-") skew = -skew | 0;
    out.push({ tm: int32(tm.magnitude, tm.negative) >>> 0, skew });
    ptr = end;
  }
  return out.slice(-3);
}

function token(e: Evidence): string {
  return `${e.tm}${e.skew >= 0 ? "+" : ""}${e.skew}`;
}

export function learnTimeSkew(text: string, tm: number, skew: number): SkewLearning {
  const resetting = getOption(text, "RESETTING_TIME_SKEW");
  const evidence = resetting === null ? [] : parseResetting(resetting);
  const last = evidence[evidence.length - 1];
  if (last && tm + skew === last.tm + last.skew) return { kind: "repeat" };
  evidence.push({ tm, skew });
  const recent = evidence.slice(-3);

  if (recent.length === 3) {
    let ok = true;
    let lastTm = recent[0]!.tm;
    let lastSkew = recent[0]!.skew;
    let sum = lastSkew;
    for (let i = 1; i < 3; i++) {
      const e = recent[i]!;
      if (e.tm <= lastTm || e.tm > lastTm + 2 || lastSkew - skew < -1 || lastSkew - skew > 1) {
        ok = false;
        break;
      }
      lastTm = e.tm;
      lastSkew = e.skew;
      sum += lastSkew;
    }
    if (ok) {
      const average = Math.trunc(sum / 3);
      const withSkew = setOption(text, "TIME_SKEW", String(average));
      return { kind: "reset", text: setOption(withSkew, "RESETTING_TIME_SKEW", ""), skew: average };
    }
  }
  return { kind: "pending", text: setOption(text, "RESETTING_TIME_SKEW", recent.map(token).join(" ")) };
}
