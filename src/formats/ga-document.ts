// Edits on the raw text of a google-authenticator state file, done exactly as
// pam_google_authenticator does them (option lookup, insert/replace/dedupe, scratch-code removal),
// so a file changed by otpgate is byte-for-byte what the reference module would have written.
// The text is a "binary string": one char per byte (latin1), so any file round-trips unchanged.

import { cspan, endsValue, scanNumber, span } from "./c-scan.js";

const EOL = "\r\n";

interface OptionLine {
  readonly start: number;
  /** End of the line including the run of CR/LF characters after it. */
  readonly stop: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

function matchesKey(text: string, line: number, key: string): boolean {
  if (text[line] !== '"' || text[line + 1] !== " " || !text.startsWith(key, line + 2)) return false;
  const after = text[line + 2 + key.length];
  return after === undefined || after === " " || after === "\t" || after === "\r" || after === "\n";
}

function nextLine(text: string, line: number): number {
  return span(text, cspan(text, line, EOL), EOL);
}

function findOption(text: string, key: string, from = 0): OptionLine | null {
  for (let line = from; line < text.length; line = nextLine(text, line)) {
    if (matchesKey(text, line, key)) {
      const valueStart = span(text, line + 2 + key.length, " \t");
      const valueEnd = cspan(text, valueStart, EOL);
      return { start: line, stop: span(text, cspan(text, line, EOL), EOL), valueStart, valueEnd };
    }
  }
  return null;
}

/** The value of the first `" KEY ...` line (leading blanks removed, up to CR/LF), or null. */
export function getOption(text: string, key: string): string | null {
  const found = findOption(text, key);
  return found ? text.slice(found.valueStart, found.valueEnd) : null;
}

export function hasOption(text: string, key: string): boolean {
  return findOption(text, key) !== null;
}

/**
 * Set `" KEY VALUE\n`: replaces the first such line together with the CR/LF run after it, or
 * inserts it after the first line's CR/LF run; later duplicates are deleted. One deliberate
 * difference: when line 1 has no line break, one is added first instead of gluing the option onto
 * the secret (the reference would corrupt such a file).
 */
export function setOption(text: string, key: string, value: string): string {
  // Never a line break or NUL inside an option: a value from outside (PAM_RHOST) would otherwise
  // become lines of its own, e.g. an emergency code (red team rt1, F2). Callers check their input
  // first; this is the last line of defence, so it throws rather than writing anything.
  if (/[\r\n\0]/.test(key) || /[\r\n\0]/.test(value))
    throw new RangeError(`refusing to write the option ${JSON.stringify(key.replace(/[\r\n\0].*$/s, ""))} with a line break or NUL in it; nothing was written`);
  const line = `" ${key} ${value}\n`;
  const found = findOption(text, key);
  let result: string;
  let after: number;
  if (found) {
    result = text.slice(0, found.start) + line + text.slice(found.stop);
    after = found.start + line.length;
  } else {
    let at = span(text, cspan(text, 0, EOL), EOL);
    let head = text.slice(0, at);
    if (at === text.length && !/[\r\n]$/.test(head)) {
      head += "\n";
      at = text.length;
    }
    result = head + line + text.slice(at);
    after = head.length + line.length;
  }
  // Later duplicates go in one pass (removing them one by one re-copied the text for each: a file
  // of thousands of duplicate lines cost quadratic time on every login).
  const kept: string[] = [];
  let keptFrom = 0;
  for (let dup = findOption(result, key, after); dup; dup = findOption(result, key, dup.stop)) {
    kept.push(result.slice(keptFrom, dup.start));
    keptFrom = dup.stop;
  }
  if (keptFrom === 0) return result;
  kept.push(result.slice(keptFrom));
  return kept.join("");
}

/** A scratch-code line as the reference module finds it. */
export interface ScratchEntry {
  readonly code: number;
  readonly start: number;
  /** End of the number (before the CR/LF run). */
  readonly end: number;
}

/**
 * The scratch codes the reference module would accept: after line 1, skipping blank and `"` lines,
 * each line must be an 8-digit number in [10000000, 99999999] followed by CR, LF or the end; the
 * scan stops at the first line that is neither.
 */
export function scratchEntries(text: string): ScratchEntry[] {
  const entries: ScratchEntry[] = [];
  let ptr = cspan(text, 0, "\n");
  for (;;) {
    ptr = span(text, ptr, EOL);
    if (text[ptr] === '"') {
      ptr = cspan(text, ptr, "\n");
      continue;
    }
    const n = scanNumber(text, ptr);
    if (!n.digits || n.negative || !endsValue(text[n.end], EOL) || n.magnitude < 10_000_000 || n.magnitude >= 100_000_000) {
      return entries;
    }
    entries.push({ code: n.magnitude, start: ptr, end: n.end });
    ptr = n.end;
  }
}

/** Remove one scratch code's line and the CR/LF run after it. */
export function removeScratchEntry(text: string, entry: ScratchEntry): string {
  return text.slice(0, entry.start) + text.slice(span(text, entry.end, EOL));
}

/** Line 1 as the module reads it: everything up to the first LF (a CR stays and is skipped by base32). */
export function secretLine(text: string): string {
  return text.slice(0, cspan(text, 0, "\n"));
}

/** Replace all emergency codes: the old ones are removed, the new ones appended at the end. */
export function replaceScratchCodes(text: string, codes: readonly number[]): string {
  let result = text;
  for (const entry of scratchEntries(text).reverse()) result = removeScratchEntry(result, entry);
  if (result.length > 0 && !/[\r\n]$/.test(result)) result += "\n";
  return result + codes.map((c) => formatScratchCode(c) + "\n").join("");
}

/** An emergency code as the file holds it and the user types it: 8 digits, zero-padded. */
export function formatScratchCode(code: number): string {
  return String(code).padStart(8, "0");
}
