// Merging copies of one account's state file kept on several hosts (otpgate db import, issue 11):
// the same secret, each host with its own bookkeeping. The merge never lets a code through that one
// of the hosts would refuse:
//   - DISALLOW_REUSE: the union of the used time steps (a code used on any host stays used), and the
//     policy itself when any copy has it (the stricter one);
//   - the HOTP counter: the highest (codes below it were used somewhere);
//   - RATE_LIMIT: the strictest limit of any copy (fewest attempts, longest interval), the union of
//     the stamps, newest `attempts` kept (the attempts made anywhere count);
//   - WINDOW_SIZE: the smallest of any copy (the strictest; settings never get looser by merging);
//   - emergency codes: only those present on EVERY host (one missing on a host was used there);
//   - everything else (step, skew, grace records): the first copy's (the caller orders them).
// Pure; the texts are binary strings like every state file text (formats/ga-document.ts).

import { decodeGaSecret } from "../core/base32.js";
import { getOption, removeScratchEntry, scratchEntries, secretLine, setOption } from "./ga-document.js";
import { parseRateLimit, readOtpKind, readRateLimit, readStepSize, readWindowSize, SettingError } from "./ga-settings.js";

/** The decoded secret as lowercase hex (for comparing copies; never printed), or null when line 1 is unusable. */
export function secretIdentity(text: string): string | null {
  const key = decodeGaSecret(secretLine(text));
  if (!key) return null;
  let hex = "";
  for (const b of key) hex += b.toString(16).padStart(2, "0");
  key.fill(0);
  return hex;
}

/** How codes are made (mode, algorithm, digits, step): copies that differ here cannot be merged. */
export function codeShape(text: string): string | null {
  const kind = readOtpKind(text);
  const step = readStepSize(text);
  if (kind instanceof SettingError || step instanceof SettingError) return null;
  return `${kind.mode}/${kind.algorithm}/${kind.digits}/${kind.mode === "totp" ? step : "-"}`;
}

function stepTokens(text: string): number[] {
  const value = getOption(text, "DISALLOW_REUSE");
  if (value === null) return [];
  return value
    .split(/[ \t]+/)
    .filter((t) => /^-?[0-9]+$/.test(t))
    .map(Number);
}

export interface MergeResult {
  readonly text: string;
  /** Emergency codes of the first copy left out because another copy no longer has them. */
  readonly scratchCodesDropped: number;
}

/**
 * Merge copies with the same secret and code shape (check with secretIdentity and codeShape
 * first); the first copy is the base. One copy is returned unchanged.
 */
export function mergeStateTexts(copies: readonly string[]): MergeResult {
  if (copies.length === 0) throw new RangeError("mergeStateTexts needs at least one copy");
  let text = copies[0]!;
  if (copies.length === 1) return { text, scratchCodesDropped: 0 };
  const others = copies.slice(1);

  // Used steps: union, when any copy refuses reuse.
  if (copies.some((c) => getOption(c, "DISALLOW_REUSE") !== null)) {
    const steps = [...new Set(copies.flatMap(stepTokens))].sort((a, b) => a - b);
    if (steps.length > 0 || getOption(text, "DISALLOW_REUSE") === null) text = setOption(text, "DISALLOW_REUSE", steps.join(" "));
  }

  // HOTP counter: the highest.
  const kind = readOtpKind(text);
  if (!(kind instanceof SettingError) && kind.mode === "hotp") {
    let counter = kind.counter;
    for (const c of others) {
      const k = readOtpKind(c);
      if (!(k instanceof SettingError) && k.mode === "hotp") counter = Math.max(counter, k.counter);
    }
    text = setOption(text, kind.counterKey, String(counter));
  }

  // RATE_LIMIT: the strictest of any copy (rt1 F7): the fewest attempts per the longest interval,
  // every copy's stamps. A copy's unreadable RATE_LIMIT line is left to the base (verify refuses it).
  const limits = copies.map((c) => getOption(c, "RATE_LIMIT")).flatMap((v) => (v === null ? [] : [parseRateLimit(v)]));
  const valid = limits.filter((r): r is Exclude<typeof r, SettingError> => !(r instanceof SettingError));
  if (valid.length > 0 && !(readRateLimit(text) instanceof SettingError)) {
    const attempts = Math.min(...valid.map((r) => r.attempts));
    const interval = Math.max(...valid.map((r) => r.intervalSeconds));
    const kept = [...new Set(valid.flatMap((r) => r.stamps))].sort((a, b) => a - b).slice(-attempts);
    text = setOption(text, "RATE_LIMIT", [attempts, interval, ...kept].join(" "));
  }

  // WINDOW_SIZE: the smallest of any copy (no line: the default 3), so no copy's code is accepted
  // further from now than that host would (rt1 F7).
  const windows = copies.map(readWindowSize);
  if (windows.every((w) => !(w instanceof SettingError))) {
    const smallest = Math.min(...(windows as number[]));
    if (smallest !== windows[0]) text = setOption(text, "WINDOW_SIZE", String(smallest));
  }

  // Emergency codes: the intersection, in the base's order.
  const present = others.map((c) => new Set(scratchEntries(c).map((e) => e.code)));
  let dropped = 0;
  for (const entry of scratchEntries(text).reverse()) {
    if (present.every((set) => set.has(entry.code))) continue;
    text = removeScratchEntry(text, entry);
    dropped++;
  }
  return { text, scratchCodesDropped: dropped };
}
