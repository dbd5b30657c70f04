// The few C library scanning rules (strcspn, strspn, strtoul, strtol) that decide how
// pam_google_authenticator reads its state file, reproduced so otpgate reads it identically.

export function isCSpace(ch: number): boolean {
  return ch === 0x20 || (ch >= 0x09 && ch <= 0x0d);
}

function inSet(ch: number, chars: string): boolean {
  for (let j = 0; j < chars.length; j++) if (chars.charCodeAt(j) === ch) return true;
  return false;
}

/** Index of the first character at or after `from` that is one of `chars` (or text.length). */
export function cspan(text: string, from: number, chars: string): number {
  let i = from;
  if (chars === "\r\n") {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 13 || c === 10) break;
      i++;
    }
    return i;
  }
  while (i < text.length && !inSet(text.charCodeAt(i), chars)) i++;
  return i;
}

/** Index of the first character at or after `from` that is not one of `chars` (or text.length). */
export function span(text: string, from: number, chars: string): number {
  let i = from;
  while (i < text.length && inSet(text.charCodeAt(i), chars)) i++;
  return i;
}

export interface CNumber {
  /** Magnitude parsed (the sign is in `negative`); Infinity when it overflowed. */
  readonly magnitude: number;
  readonly negative: boolean;
  /** Index after the number, or `from` when no digits were found (C sets endptr = nptr). */
  readonly end: number;
  readonly digits: boolean;
}

/** strtoul/strtol in base 10: leading white space, optional sign, decimal digits. */
export function scanNumber(text: string, from: number): CNumber {
  let i = from;
  while (i < text.length && isCSpace(text.charCodeAt(i))) i++;
  let negative = false;
  if (text[i] === "+" || text[i] === "-") {
    negative = text[i] === "-";
    i++;
  }
  const digitsStart = i;
  let magnitude = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    magnitude = magnitude * 10 + (c - 0x30);
    i++;
  }
  if (i === digitsStart) return { magnitude: 0, negative: false, end: from, digits: false };
  if (magnitude > Number.MAX_SAFE_INTEGER) magnitude = Infinity;
  return { magnitude, negative, end: i, digits: true };
}

/** True when `ch` (possibly undefined = end of string) is one of the C terminators for a value. */
export function endsValue(ch: string | undefined, chars: string): boolean {
  return ch === undefined || chars.includes(ch);
}
