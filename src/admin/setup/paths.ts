// Paths under --root, and reading a file that may not exist. Setup edits text as UTF-8 (what
// node decodes argv with, so what otpgate pam receives is what setup meant): a file that is not
// valid UTF-8 is refused rather than re-encoded, which would change its other bytes.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SetupError } from "./apply.js";

export const inRoot = (root: string, path: string): string => (root === "/" ? path : join(root, path));

/** Bytes as UTF-8 text, or null when they are not valid UTF-8. */
export function utf8Text(bytes: Buffer): string | null {
  const text = bytes.toString("utf8");
  return Buffer.from(text, "utf8").equals(bytes) ? text : null;
}

export function readIfExists(path: string): string | null {
  if (!existsSync(path)) return null;
  const text = utf8Text(readFileSync(path));
  if (text === null) throw new SetupError(`${path} is not valid UTF-8 text: setup writes UTF-8 and would change its other bytes; convert it (iconv -t UTF-8) or edit it by hand`);
  return text;
}
