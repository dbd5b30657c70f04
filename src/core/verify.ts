// The login decision: is this entry accepted for this state file at this time? A pure function
// with libpam-google-authenticator's semantics (rate limit first, then scratch codes, then HOTP or
// TOTP with window, reuse list and time-skew learning). It returns how it matched or why not, and
// the new file text for the caller to persist. No clock, randomness or I/O in here.

import { decodeGaSecret } from "./base32.js";
import type { CodeGenerator, MacFactory } from "./otp.js";
import { createCodeGenerator } from "./otp.js";
import { scanNumber } from "../formats/c-scan.js";
import { getOption, removeScratchEntry, scratchEntries, secretLine, setOption } from "../formats/ga-document.js";
import { SettingError, parseRateLimit, readOtpKind, readStepSize, readTimeSkew, readWindowSize } from "../formats/ga-settings.js";
import { applyRateLimit } from "./rate-limit.js";
import { learnTimeSkew, REFERENCE_SKEW_SEARCH_STEPS, SKEW_SEARCH_STEPS } from "./time-skew.js";

export interface VerifyPolicy {
  /** Reference `noskewadj`: no far-off search and no skew learning. */
  readonly noSkewAdjust: boolean;
  /**
   * How many steps either way a far-off code is searched for when skew learning is on. Default
   * SKEW_SEARCH_STEPS (otpgate's cap); REFERENCE_SKEW_SEARCH_STEPS (1499) reproduces the reference.
   */
  readonly skewSearchSteps?: number | undefined;
  /** Reference `no_increment_hotp`: a failed HOTP attempt does not advance the counter. */
  readonly noIncrementHotp: boolean;
  /**
   * Text before the code is allowed (reference first-pass and forward_pass modes); the part
   * before the code is returned as `prefix`. When false the entry must be the code alone.
   */
  readonly allowPrefix: boolean;
  /**
   * Record the code that completes a time-skew reset in DISALLOW_REUSE (otpgate's default). The
   * reference module does not, so that code can be replayed; false reproduces the reference.
   */
  readonly recordSkewResetCode: boolean;
  /**
   * An entry that cannot be a code (no digits, wrong length, text around it) is refused without
   * touching the state: it proves nothing about the code, so it must not use up RATE_LIMIT that
   * every other service reading the file shares (otpgate's login path). Unset reproduces the
   * reference, which counts it as an attempt.
   */
  readonly malformedIsNoAttempt?: boolean | undefined;
  /**
   * "ignore": RATE_LIMIT is neither consumed nor honoured (a malformed RATE_LIMIT still makes the
   * state invalid). Only for a front-end that limits guessing itself and must not let clients who
   * know no secret use up the owner's RATE_LIMIT, which SSH, RStudio and RADIUS share: the
   * gateway without a password factor, whose own regulation bounds its network clients. Unset
   * ("apply") reproduces the reference.
   */
  readonly rateLimit?: "apply" | "ignore" | undefined;
}

export const DEFAULT_POLICY: VerifyPolicy = { noSkewAdjust: false, noIncrementHotp: false, allowPrefix: false, recordSkewResetCode: true };

export type Accepted =
  | { readonly kind: "accepted"; readonly via: "totp"; readonly step: number; readonly offset: number; readonly prefix: string }
  | { readonly kind: "accepted"; readonly via: "totp-skew-reset"; readonly step: number; readonly skew: number; readonly prefix: string }
  | { readonly kind: "accepted"; readonly via: "hotp"; readonly counter: number; readonly prefix: string }
  | { readonly kind: "accepted"; readonly via: "scratch"; readonly remaining: number; readonly prefix: string };

export type RejectReason =
  /** Not a code of the right shape (no digits, wrong length, text around it). */
  | "malformed"
  /** A well-formed code that matches nothing. */
  | "wrong"
  /** A TOTP code whose step is in DISALLOW_REUSE. */
  | "replay"
  /** RATE_LIMIT exceeded: the code was not even looked at. */
  | "rate-limited"
  /** The code matched far outside the window; recorded as evidence towards a new TIME_SKEW. */
  | "skew-pending"
  /** The file holds neither TOTP nor HOTP settings and the code was not a scratch code. */
  | "no-otp";

export type Outcome =
  | Accepted
  | { readonly kind: "rejected"; readonly reason: RejectReason }
  /** The state file cannot be used as it is; nothing is accepted until an admin fixes it. */
  | { readonly kind: "invalid-state"; readonly setting: string; readonly problem: string };

export interface VerifyResult {
  readonly outcome: Outcome;
  /** The new file text when bookkeeping or state changed, else null. */
  readonly next: string | null;
}

interface Candidate {
  readonly length: number;
  readonly digits: string;
  readonly value: number;
  readonly prefix: string;
}

function candidates(entry: string, lengths: readonly number[], allowPrefix: boolean): Candidate[] {
  const out: Candidate[] = [];
  for (const length of lengths) {
    if (entry.length < length) continue;
    const digits = entry.slice(entry.length - length);
    if (!/^[0-9]+$/.test(digits)) continue;
    const prefix = entry.slice(0, entry.length - length);
    if (prefix !== "" && !allowPrefix) continue;
    out.push({ length, digits, value: Number(digits), prefix });
  }
  return out;
}

/** The code lengths an account accepts: its own digit count and the 8-digit scratch codes. */
const lengthsOf = (digits: number): readonly number[] => (digits === 8 ? [8] : [digits, 8]);

const invalid = (e: SettingError, next: string | null): VerifyResult => ({
  outcome: { kind: "invalid-state", setting: e.setting, problem: e.message },
  next,
});

/** Check TOTP `value` against steps around `tm + skew`; the first match in ascending order wins. */
function matchWindow(gen: CodeGenerator, base: number, window: number, value: number): number | null {
  let found: number | null = null;
  for (let i = -((window - 1) >> 1); i <= window >> 1; i++) {
    if (gen(base + i) === value && found === null) found = i;
  }
  return found;
}

/**
 * The reference's skew search order (i = 0..limit, step tm-i then tm+i, first hit wins, no early
 * exit), but only as far as `limit` steps: see SKEW_SEARCH_STEPS.
 */
function searchSkew(gen: CodeGenerator, tm: number, value: number, limit: number): number | null {
  let skew: number | null = null;
  for (let i = 0; i <= limit; i++) {
    if (gen(tm - i) === value && skew === null) skew = -i;
    if (gen(tm + i) === value && skew === null) skew = i;
  }
  return skew;
}

type ReuseCheck = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly replay: true } | SettingError;

/** DISALLOW_REUSE: refuse a listed step, drop steps outside the window, append this one. */
export function recordUsedStep(text: string, step: number, window: number): ReuseCheck {
  const original = getOption(text, "DISALLOW_REUSE");
  if (original === null) return { ok: true, text };
  const list = original;
  // Expired steps are cut out in one pass: the kept pieces are joined at the end (cutting them
  // out one by one re-copied the list each time, quadratic for a long crafted list).
  const kept: string[] = [];
  let keptFrom = 0;
  let ptr = 0;
  for (;;) {
    while (ptr < list.length && " \t\r\n".includes(list[ptr]!)) ptr++;
    if (ptr >= list.length) break;
    const n = scanNumber(list, ptr);
    const after = list[n.end];
    if (!n.digits || !Number.isFinite(n.magnitude) || (after !== undefined && !" \t\r\n".includes(after))) {
      return new SettingError("DISALLOW_REUSE", `DISALLOW_REUSE must list time-step numbers, not "${original}"`);
    }
    const blocked = n.negative ? -n.magnitude | 0 : n.magnitude | 0;
    if (blocked === step) return { ok: false, replay: true };
    if (blocked - step >= window || step - blocked >= window) {
      let end = n.end;
      while (end < list.length && (list[end] === " " || list[end] === "\t")) end++;
      kept.push(list.slice(keptFrom, ptr));
      keptFrom = end;
      ptr = end;
    } else {
      ptr = n.end;
    }
  }
  kept.push(list.slice(keptFrom));
  let remaining = kept.join("");
  remaining += remaining === "" ? String(step) : ` ${step}`;
  return { ok: true, text: setOption(text, "DISALLOW_REUSE", remaining) };
}

/**
 * Decide one login attempt. `entry` is what the user typed (for a PAM first-pass or forward_pass
 * entry, possibly a password followed by the code, with `allowPrefix`).
 */
export function verify(text: string, entry: string, nowMs: number, policy: VerifyPolicy, macFactory: MacFactory): VerifyResult {
  const key = decodeGaSecret(secretLine(text));
  if (!key) {
    return invalid(new SettingError("SECRET", "line 1 is not a base32-encoded secret"), null);
  }
  try {
    return decide(text, key, entry, Math.floor(nowMs / 1000), policy, macFactory);
  } finally {
    key.fill(0);
  }
}

function decide(text: string, key: Uint8Array, entry: string, now: number, policy: VerifyPolicy, macFactory: MacFactory): VerifyResult {
  if (policy.malformedIsNoAttempt) {
    const early = readOtpKind(text);
    if (!(early instanceof SettingError) && candidates(entry, lengthsOf(early.digits), policy.allowPrefix).length === 0) {
      return { outcome: { kind: "rejected", reason: "malformed" }, next: null };
    }
  }
  let changed = false;
  const rateValue = getOption(text, "RATE_LIMIT");
  if (rateValue !== null) {
    const setting = parseRateLimit(rateValue);
    if (setting instanceof SettingError) return invalid(setting, null);
    if (policy.rateLimit !== "ignore") {
      const limited = applyRateLimit(setting, now);
      text = setOption(text, "RATE_LIMIT", limited.value);
      changed = true;
      if (limited.exceeded) return { outcome: { kind: "rejected", reason: "rate-limited" }, next: text };
    }
  }
  const next = () => (changed ? text : null);

  const kind = readOtpKind(text);
  if (kind instanceof SettingError) return invalid(kind, next());

  const tries = candidates(entry, lengthsOf(kind.digits), policy.allowPrefix);
  if (tries.length === 0) return { outcome: { kind: "rejected", reason: "malformed" }, next: next() };

  let gen: CodeGenerator | null = null;
  const generator = () => (gen ??= createCodeGenerator(key, kind, macFactory));
  let mustAdvanceHotp = false;
  let outcome: Outcome = { kind: "rejected", reason: kind.mode === "none" ? "no-otp" : "wrong" };

  for (const c of tries) {
    if (c.length === 8 && c.digits[0] !== "0") {
      const scratch = scratchEntries(text);
      let hit: (typeof scratch)[number] | null = null;
      for (const s of scratch) if (s.code === c.value && hit === null) hit = s;
      if (hit) {
        text = removeScratchEntry(text, hit);
        changed = true;
        outcome = { kind: "accepted", via: "scratch", remaining: scratch.length - 1, prefix: c.prefix };
        break;
      }
    }
    if (c.length !== kind.digits || kind.mode === "none") continue;

    if (kind.mode === "hotp") {
      const window = readWindowSize(text);
      if (window instanceof SettingError) return invalid(window, next());
      let matched: number | null = null;
      for (let i = 0; i < window; i++) if (generator()(kind.counter + i) === c.value && matched === null) matched = i;
      if (matched !== null) {
        text = setOption(text, kind.counterKey, String(kind.counter + matched + 1));
        changed = true;
        mustAdvanceHotp = false;
        outcome = { kind: "accepted", via: "hotp", counter: kind.counter + matched, prefix: c.prefix };
        break;
      }
      mustAdvanceHotp = true;
      continue;
    }

    const totp = checkTotp(text, generator, c.value, now, policy);
    if (totp === "no-match") continue;
    if (totp instanceof SettingError) return invalid(totp, next());
    if (totp.text !== text) {
      text = totp.text;
      changed = true;
    }
    outcome = totp.outcome.kind === "accepted" ? { ...totp.outcome, prefix: c.prefix } : totp.outcome;
    break;
  }

  if (mustAdvanceHotp && !policy.noIncrementHotp) {
    text = setOption(text, kind.counterKey, String(kind.counter + 1));
    changed = true;
  }
  return { outcome, next: next() };
}

type TotpCheck = "no-match" | SettingError | { readonly text: string; readonly outcome: Exclude<Outcome, { kind: "invalid-state" }> };

function checkTotp(text: string, generator: () => CodeGenerator, value: number, now: number, policy: VerifyPolicy): TotpCheck {
  const stepSize = readStepSize(text);
  if (stepSize instanceof SettingError) return stepSize;
  const tm = Math.floor(now / stepSize);
  const skew = readTimeSkew(text);
  const window = readWindowSize(text);
  if (window instanceof SettingError) return window;

  const offset = matchWindow(generator(), tm + skew, window, value);
  if (offset !== null) {
    const step = tm + skew + offset;
    const reuse = recordUsedStep(text, step, window);
    if (reuse instanceof SettingError) return reuse;
    if (!reuse.ok) return { text, outcome: { kind: "rejected", reason: "replay" } };
    return { text: reuse.text, outcome: { kind: "accepted", via: "totp", step, offset, prefix: "" } };
  }
  if (policy.noSkewAdjust) return "no-match";

  const found = searchSkew(generator(), tm, value, Math.max(0, Math.min(policy.skewSearchSteps ?? SKEW_SEARCH_STEPS, REFERENCE_SKEW_SEARCH_STEPS)));
  if (found === null) return "no-match";
  const learned = learnTimeSkew(text, tm, found);
  if (learned.kind === "repeat") return { text, outcome: { kind: "rejected", reason: "skew-pending" } };
  if (learned.kind === "pending") return { text: learned.text, outcome: { kind: "rejected", reason: "skew-pending" } };
  // otpgate difference: the code that completes a skew reset is recorded like any other login,
  // so it cannot be replayed (the reference accepts it without recording it).
  const step = tm + found;
  if (!policy.recordSkewResetCode) {
    return { text: learned.text, outcome: { kind: "accepted", via: "totp-skew-reset", step, skew: learned.skew, prefix: "" } };
  }
  const reuse = recordUsedStep(learned.text, step, window);
  if (reuse instanceof SettingError) return reuse;
  if (!reuse.ok) return { text, outcome: { kind: "rejected", reason: "replay" } };
  return { text: reuse.text, outcome: { kind: "accepted", via: "totp-skew-reset", step, skew: learned.skew, prefix: "" } };
}
