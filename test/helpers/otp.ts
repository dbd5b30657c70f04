// Test helpers: codes for a base32 secret at a step or counter, via the project's generator
// (itself checked against RFC vectors, node:crypto, oathtool and pyotp).

import { decodeGaSecret } from "../../src/core/base32.js";
import { createCodeGenerator, formatCode, type Algorithm } from "../../src/core/otp.js";
import { nodeMacFactory } from "../../src/platform/mac.js";

export function codeAt(secret: string, counter: number, algorithm: Algorithm = "SHA1", digits = 6): string {
  const key = decodeGaSecret(secret);
  if (!key) throw new Error("bad test secret");
  return formatCode(createCodeGenerator(key, { algorithm, digits }, nodeMacFactory)(counter), digits);
}

/** A code that matches none of the counters in [from, to]. */
export function wrongCode(secret: string, from: number, to: number): string {
  const used = new Set<string>();
  for (let c = from; c <= to; c++) used.add(codeAt(secret, c));
  for (let n = 0; ; n++) {
    const candidate = String(n * 7919 % 1000000).padStart(6, "0");
    if (!used.has(candidate)) return candidate;
  }
}
