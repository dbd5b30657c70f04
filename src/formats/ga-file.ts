// The google-authenticator state file as a structure: lines classified the way the reference
// module reads them (parse/serialize round-trip byte for byte, unknown lines kept), a summary of
// the settings for status displays, and the file the reference tool writes for a new enrollment.

import type { Algorithm } from "../core/otp.js";
import { decodeGaSecret } from "../core/base32.js";
import { formatScratchCode, getOption, scratchEntries, secretLine } from "./ga-document.js";
import type { OtpKind, RateLimitSetting } from "./ga-settings.js";
import { EXT, SettingError, readOtpKind, readRateLimit, readStepSize, readTimeSkew, readWindowSize } from "./ga-settings.js";

/** Option lines the reference module or otpgate understands. */
export const KNOWN_OPTIONS: readonly string[] = [
  "RATE_LIMIT",
  "WINDOW_SIZE",
  "STEP_SIZE",
  "DISALLOW_REUSE",
  "TOTP_AUTH",
  "HOTP_COUNTER",
  "TIME_SKEW",
  "RESETTING_TIME_SKEW",
  "LAST0",
  "LAST1",
  "LAST2",
  "LAST3",
  "LAST4",
  "LAST5",
  "LAST6",
  "LAST7",
  "LAST8",
  "LAST9",
  EXT.algorithm,
  EXT.digits,
  EXT.totp,
  EXT.hotp,
];

export type LineKind = "secret" | "option" | "scratch" | "blank" | "other";

export interface FileLine {
  readonly kind: LineKind;
  /** The line without its line break. */
  readonly text: string;
  /** The run of CR/LF characters after the line ("" at the end of the file). */
  readonly eol: string;
  /** For option lines: the NAME after `" `. */
  readonly key?: string;
}

export interface StateFile {
  readonly lines: readonly FileLine[];
}

export function parseStateFile(text: string): StateFile {
  const scratchStarts = new Set(scratchEntries(text).map((e) => e.start));
  const lines: FileLine[] = [];
  const re = /([^\r\n]*)([\r\n]*)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text)!;
    const body = m[1]!;
    const eol = m[2]!;
    let kind: LineKind;
    let key: string | undefined;
    if (pos === 0) kind = "secret";
    else if (body.startsWith('" ')) {
      kind = "option";
      key = /^" ([^ \t]*)/.exec(body)![1];
    } else if (scratchStarts.has(pos)) kind = "scratch";
    else if (body.trim() === "") kind = "blank";
    else kind = "other";
    lines.push(key === undefined ? { kind, text: body, eol } : { kind, text: body, eol, key });
    pos = re.lastIndex;
  }
  return { lines };
}

export function serializeStateFile(file: StateFile): string {
  return file.lines.map((l) => l.text + l.eol).join("");
}

/** What a state file says, without the secret or any code. */
export interface StateSummary {
  readonly secretValid: boolean;
  readonly secretBits: number;
  readonly otp: OtpKind | null;
  readonly windowSize: number | null;
  readonly stepSeconds: number | null;
  readonly rateLimit: RateLimitSetting | null;
  readonly disallowReuse: boolean;
  readonly timeSkewSteps: number;
  readonly scratchCodesLeft: number;
  readonly unknownOptions: readonly string[];
  /** Everything that makes logins fail or that an admin should fix. */
  readonly problems: readonly string[];
}

export function summarize(text: string): StateSummary {
  const problems: string[] = [];
  const key = decodeGaSecret(secretLine(text));
  if (!key) problems.push("line 1 is not a base32-encoded secret");
  const secretBits = key ? key.length * 8 : 0;
  key?.fill(0);
  const pick = <T>(v: T | SettingError): T | null => {
    if (v instanceof SettingError) {
      problems.push(v.message);
      return null;
    }
    return v;
  };
  const otp = pick(readOtpKind(text));
  const rate = readRateLimit(text);
  const file = parseStateFile(text);
  const unknownOptions = file.lines.filter((l) => l.kind === "option" && l.key !== undefined && !KNOWN_OPTIONS.includes(l.key)).map((l) => l.key!);
  const others = file.lines.filter((l, i) => l.kind === "other" && i > 0);
  if (others.length > 0) problems.push(`${others.length} line(s) are neither options nor emergency codes; emergency codes after the first such line are ignored`);
  return {
    secretValid: key !== null,
    secretBits,
    otp,
    windowSize: pick(readWindowSize(text)),
    stepSeconds: pick(readStepSize(text)),
    rateLimit: rate === null ? null : pick(rate),
    disallowReuse: getOption(text, "DISALLOW_REUSE") !== null,
    timeSkewSteps: readTimeSkew(text),
    scratchCodesLeft: scratchEntries(text).length,
    unknownOptions,
    problems,
  };
}

/** Settings of a new enrollment, as google-authenticator's flags give them. */
export interface NewStateSettings {
  /** Base32 secret as written on line 1. */
  readonly secret: string;
  readonly mode: "totp" | "hotp";
  readonly rateLimit?: { readonly attempts: number; readonly intervalSeconds: number } | undefined;
  readonly windowSize?: number | undefined;
  /** TOTP only; omitted when not given explicitly (the reference then uses 30). */
  readonly stepSeconds?: number | undefined;
  /** TOTP only. */
  readonly disallowReuse?: boolean | undefined;
  readonly scratchCodes: readonly number[];
  /** Anything but SHA1/6 is written as otpgate extension lines that the reference cannot use. */
  readonly algorithm?: Algorithm | undefined;
  readonly digits?: number | undefined;
}

/** The file exactly as the reference tool writes it (order RATE, WINDOW, STEP, DISALLOW, mode, codes). */
export function formatNewStateFile(s: NewStateSettings): string {
  const lines = [s.secret];
  const extended = (s.algorithm ?? "SHA1") !== "SHA1" || (s.digits ?? 6) !== 6;
  if (s.rateLimit) lines.push(`" RATE_LIMIT ${s.rateLimit.attempts} ${s.rateLimit.intervalSeconds}`);
  if (s.windowSize !== undefined) lines.push(`" WINDOW_SIZE ${s.windowSize}`);
  if (s.mode === "totp" && s.stepSeconds !== undefined) lines.push(`" STEP_SIZE ${s.stepSeconds}`);
  if (s.mode === "totp" && s.disallowReuse) lines.push(`" DISALLOW_REUSE`);
  if (extended) {
    lines.push(`" ${EXT.algorithm} ${s.algorithm ?? "SHA1"}`, `" ${EXT.digits} ${s.digits ?? 6}`);
    lines.push(s.mode === "totp" ? `" ${EXT.totp}` : `" ${EXT.hotp} 1`);
  } else {
    lines.push(s.mode === "totp" ? `" TOTP_AUTH` : `" HOTP_COUNTER 1`);
  }
  for (const code of s.scratchCodes) lines.push(formatScratchCode(code));
  return lines.join("\n") + "\n";
}
