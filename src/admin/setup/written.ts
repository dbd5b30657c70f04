// What setup actually wrote, read back from the bytes on disk the way the consumers read them:
// Linux-PAM's tokenizer and node's UTF-8 argv for the PAM line, sh's single quotes for the rstudio
// helper. Used before success to check that the state file pattern that will be used is the one
// the lock-out guard looked up.

import { existsSync, readFileSync } from "node:fs";
import { otpgateCommandOf, pamExecArgv, tokenizePamLine } from "./pam-line.js";

/** The decoded text of a file as node would see it (undecodable bytes become U+FFFD), or null. */
const decoded = (path: string): string | null => (existsSync(path) ? readFileSync(path).toString("utf8") : null);

/**
 * The secret= of otpgate's line in a PAM service file: undefined when the line has none (the
 * default pattern), null when there is no otpgate line.
 */
export function pamLineSecret(pamPath: string): string | undefined | null {
  const text = decoded(pamPath);
  if (text === null) return null;
  for (const line of text.replace(/\\\n/g, " ").split("\n")) {
    const words = tokenizePamLine(line);
    if (words.length < 3 || !/(^|\/)pam_exec\.so$/.test(words[2]!)) continue;
    const cmd = otpgateCommandOf(pamExecArgv(words.slice(3)));
    if (!cmd || cmd.args[0] !== "pam") continue;
    return cmd.args.find((a) => a.startsWith("secret="))?.slice("secret=".length);
  }
  return null;
}

/** sh words of a line made only of '...' words (with '\'' inside), as setup writes the helper's exec line. */
function shWords(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'((?:[^']|'\\'')*)'/g)) out.push(m[1]!.replace(/'\\''/g, "'"));
  return out;
}

/** The --secret of the rstudio helper's exec line (undefined: none), or null when there is no such line. */
export function helperSecret(helperPath: string): string | undefined | null {
  const text = decoded(helperPath);
  const exec = text?.split("\n").find((l) => l.startsWith("exec "));
  if (!exec) return null;
  const words = shWords(exec);
  const at = words.indexOf("--secret");
  return at < 0 ? undefined : words[at + 1];
}
