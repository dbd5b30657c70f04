// Typed readers for the option lines of a google-authenticator state file, each applying the
// reference module's exact parsing rule and range, plus otpgate's extension lines.

import type { Algorithm } from "../core/otp.js";
import { ALGORITHMS } from "../core/otp.js";
import { endsValue, scanNumber } from "./c-scan.js";
import { getOption, hasOption } from "./ga-document.js";

/** A setting that is present but unusable; every verification that needs it fails closed. */
export class SettingError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = "SettingError";
  }
}

export type Read<T> = T | SettingError;

/** strtol(value, NULL, 10): lenient, garbage reads as 0 (HOTP_COUNTER, TIME_SKEW). */
export function lenientInt(value: string): number {
  const n = scanNumber(value, 0);
  if (!n.digits) return 0;
  const v = n.negative ? -n.magnitude : n.magnitude;
  return Number.isFinite(v) ? v : 0;
}

function boundedSetting(text: string, key: string, fallback: number, min: number, max: number): Read<number> {
  const value = getOption(text, key);
  if (value === null) return fallback;
  const n = scanNumber(value, 0);
  if (!n.digits || n.negative || !endsValue(value[n.end], " \t\r\n") || n.magnitude < min || n.magnitude > max) {
    return new SettingError(key, `${key} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return n.magnitude;
}

/** WINDOW_SIZE: 1..100, default 3. */
export function readWindowSize(text: string): Read<number> {
  return boundedSetting(text, "WINDOW_SIZE", 3, 1, 100);
}

/** STEP_SIZE: 1..60 seconds, default 30. */
export function readStepSize(text: string): Read<number> {
  return boundedSetting(text, "STEP_SIZE", 30, 1, 60);
}

/** TIME_SKEW in steps (lenient like the reference). */
export function readTimeSkew(text: string): number {
  const value = getOption(text, "TIME_SKEW");
  return value === null ? 0 : lenientInt(value) | 0;
}

export interface RateLimitSetting {
  readonly attempts: number;
  readonly intervalSeconds: number;
  readonly stamps: readonly number[];
}

/** RATE_LIMIT n m [t...]: n 1..100, m 1..3600, stamps as unsigned 32-bit seconds. */
export function parseRateLimit(value: string): Read<RateLimitSetting> {
  const bad = (why: string) => new SettingError("RATE_LIMIT", `RATE_LIMIT ${why} ("${value}")`);
  const a = scanNumber(value, 0);
  if (!a.digits || a.negative || a.magnitude < 1 || a.magnitude > 100 || (value[a.end] !== " " && value[a.end] !== "\t")) {
    return bad("must start with a number of attempts from 1 to 100 and an interval in seconds");
  }
  const m = scanNumber(value, a.end);
  if (!m.digits || m.negative || m.magnitude < 1 || m.magnitude > 3600) {
    return bad("needs an interval from 1 to 3600 seconds");
  }
  const stamps: number[] = [];
  let ptr = m.end;
  while (ptr < value.length && value[ptr] !== "\r" && value[ptr] !== "\n") {
    if (value[ptr] !== " " && value[ptr] !== "\t") return bad("has an invalid list of timestamps");
    const t = scanNumber(value, ptr);
    if (!t.digits || !Number.isFinite(t.magnitude)) {
      return bad("has an invalid list of timestamps (a trailing space is enough to break it)");
    }
    stamps.push(t.negative ? (0x100000000 - (t.magnitude % 0x100000000)) % 0x100000000 : t.magnitude % 0x100000000);
    ptr = t.end;
  }
  return { attempts: a.magnitude, intervalSeconds: m.magnitude, stamps };
}

export function readRateLimit(text: string): Read<RateLimitSetting> | null {
  const value = getOption(text, "RATE_LIMIT");
  return value === null ? null : parseRateLimit(value);
}

/** How codes are generated: the reference's SHA1/6 or otpgate's extension lines. */
export interface OtpKind {
  readonly mode: "totp" | "hotp" | "none";
  readonly algorithm: Algorithm;
  readonly digits: number;
  /** HOTP counter (>= 1 in HOTP mode). */
  readonly counter: number;
  /** True when the file uses otpgate's extension lines (the reference then accepts no OTP at all). */
  readonly extended: boolean;
  /** Name of the counter line in this file. */
  readonly counterKey: "HOTP_COUNTER" | "OTPGATE_HOTP_COUNTER";
}

export const EXT = {
  algorithm: "OTPGATE_ALGORITHM",
  digits: "OTPGATE_DIGITS",
  totp: "OTPGATE_TOTP_AUTH",
  hotp: "OTPGATE_HOTP_COUNTER",
} as const;

export function readOtpKind(text: string): Read<OtpKind> {
  const extended = text.includes('" OTPGATE_') && Object.values(EXT).some((key) => hasOption(text, key));
  const refCounterValue = getOption(text, "HOTP_COUNTER");
  const refCounter = refCounterValue === null ? 0 : lenientInt(refCounterValue);
  const refTotp = text.includes('" TOTP_AUTH');
  if (!extended) {
    if (refCounter >= 1) return { mode: "hotp", algorithm: "SHA1", digits: 6, counter: refCounter, extended, counterKey: "HOTP_COUNTER" };
    return { mode: refTotp ? "totp" : "none", algorithm: "SHA1", digits: 6, counter: 0, extended, counterKey: "HOTP_COUNTER" };
  }
  if (refTotp || refCounter >= 1) {
    return new SettingError(
      EXT.algorithm,
      "the file has both otpgate's OTPGATE_* lines and the reference's TOTP_AUTH or HOTP_COUNTER line; the reference would accept weaker SHA1/6-digit codes, so every code is refused until one of them is removed",
    );
  }
  const algorithmValue = getOption(text, EXT.algorithm) ?? "SHA1";
  const algorithm = ALGORITHMS.find((a) => a === algorithmValue.trim().toUpperCase());
  if (!algorithm) return new SettingError(EXT.algorithm, `${EXT.algorithm} must be SHA1, SHA256 or SHA512, not "${algorithmValue}"`);
  const digits = boundedSetting(text, EXT.digits, 6, 6, 8);
  if (digits instanceof SettingError) return digits;
  const counterValue = getOption(text, EXT.hotp);
  const counter = counterValue === null ? 0 : lenientInt(counterValue);
  const mode = counter >= 1 ? "hotp" : hasOption(text, EXT.totp) ? "totp" : "none";
  return { mode, algorithm, digits, counter, extended, counterKey: "OTPGATE_HOTP_COUNTER" };
}
