// Test helpers: codes for a base32 secret at a step or counter. They come from the independent
// oracle (otp-oracle.ts: node:crypto per RFC 4226/6238, its own base32), never from the generator
// under test, so a generator bug cannot also produce the expected value.

import { oracleCode, oracleWrongCode, type OracleAlgorithm } from "./otp-oracle.js";

export function codeAt(secret: string, counter: number, algorithm: OracleAlgorithm = "SHA1", digits = 6): string {
  return oracleCode(secret, counter, algorithm, digits);
}

/** A code that matches none of the counters in [from, to]. */
export function wrongCode(secret: string, from: number, to: number): string {
  return oracleWrongCode(secret, from, to);
}
