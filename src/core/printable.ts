// Text from outside (state-file contents, user and file names, error messages quoting them) made
// safe to print on an admin's terminal: control characters and other invisible code points become
// visible escapes, so a user's file cannot clear root's screen, move the cursor, rewrite a line
// with \r or hide text with bidi overrides.

// C0/C1 controls and DEL, format characters (bidi overrides, zero-width), line/paragraph
// separators, private use, lone surrogates; the backslash too, so an escape is never ambiguous.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}\\]/gu;

const NAMED: Readonly<Record<string, string>> = { "\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t" };

function escape(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const cp = c.codePointAt(0)!;
  if (cp < 0x100) return "\\x" + cp.toString(16).padStart(2, "0");
  if (cp < 0x10000) return "\\u" + cp.toString(16).padStart(4, "0");
  return "\\u{" + cp.toString(16) + "}";
}

/** One line of text for a terminal: printable characters as they are, everything else escaped. */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}

/**
 * JSON for a terminal: the same data as JSON.stringify (a JSON parser reads identical values),
 * written in printable ASCII only (every other UTF-16 unit as a \u escape of four hex digits).
 */
export function printableJson(value: unknown): string {
  return (JSON.stringify(value) ?? "null").replace(/[^\x20-\x7e]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** Several lines of text (our own multi-line messages): each line made printable, the breaks kept. */
export function printableLines(text: string): string {
  return text.split("\n").map(printable).join("\n");
}
