// A reference document (the text of a ~/.google_authenticator file, one char per byte) split into
// what the fleet store keeps apart: the secret line, the option lines, the emergency codes; and
// put back together for the one decision (core/verify.ts), with filler lines for the codes whose
// digests do not match the code being decided (see ports/fleet.ts).

import { ConfigError } from "../../core/errors.js";
import { FleetRowInvalid } from "./errors.js";
import { formatScratchCode, removeScratchEntry, scratchEntries, secretLine } from "../../formats/ga-document.js";

export interface SplitDocument {
  readonly secretLine: string;
  /** Every line after line 1 that is not an emergency code, as in the text (each ending in LF). */
  readonly options: string;
  /** The emergency codes, 8 digits each, in file order. */
  readonly codes: readonly string[];
}

/** Split a document; refuses a NUL byte and lines that are neither options nor emergency codes. */
export function splitDocument(text: string): SplitDocument {
  if (text.includes("\0")) throw new ConfigError("the document holds a NUL byte; it is not a google-authenticator file");
  const entries = scratchEntries(text);
  let rest = text;
  for (const entry of [...entries].reverse()) rest = removeScratchEntry(rest, entry);
  const secret = secretLine(rest);
  const options = rest.slice(secret.length + 1);
  for (const line of options.split("\n")) {
    if (line.replace(/\r/g, "") !== "" && !line.startsWith('"')) {
      throw new ConfigError('the document has a line after the secret that is neither an option (" ...) nor an emergency code; fix the file first');
    }
  }
  return { secretLine: secret, options, codes: entries.map((e) => formatScratchCode(e.code)) };
}

/** The option lines of a document whose secret line must be `expectedSecret` (a commit). */
export function optionsOf(text: string, expectedSecret: string): { options: string; codes: readonly string[] } {
  const split = splitDocument(text);
  if (split.secretLine !== expectedSecret) throw new ConfigError("refusing to change the secret through a login commit; nothing was written");
  return { options: split.options, codes: split.codes };
}

/** The document the decision sees: secret, option lines, one line per emergency code. */
export function renderDocument(secret: string, options: string, codes: readonly string[]): string {
  let text = secret + "\n" + options;
  if (options !== "" && !/[\r\n]$/.test(options)) text += "\n";
  return text + codes.map((c) => c + "\n").join("");
}

/** The 8 digits an entry would be matched against the emergency codes with, or null. */
export function emergencyCandidate(entry: string | undefined): string | null {
  if (entry === undefined || entry.length < 8) return null;
  const last = entry.slice(-8);
  return /^[0-9]{8}$/.test(last) && Number(last) >= 10_000_000 ? last : null;
}

/** A filler code line: a valid-looking 8-digit value that is never `candidate`. */
export const fillerFor = (candidate: string | null): string => (candidate === "10000000" ? "10000001" : "10000000");

/**
 * A stored option column may hold only `"` option lines (RT1 F2): anything else - an 8-digit line
 * would be an emergency code in the clear for core/verify.ts - was written outside otpgate, and the
 * row is refused (the login too; nothing is changed).
 */
export function checkStoredOptions(user: string, options: string): void {
  const bad = options.includes("\0") || options.split("\n").some((line) => line.replace(/\r/g, "") !== "" && !line.startsWith('"'));
  if (bad) {
    throw new FleetRowInvalid(
      `the stored options of ${JSON.stringify(user)} hold a line that is not an option (" ...): the row was changed outside otpgate; the login is refused and nothing was changed: check who writes to the database, then re-enroll the user`,
    );
  }
}
