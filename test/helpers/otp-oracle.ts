// An independent oracle for expected one-time codes: RFC 4226 (HOTP) and RFC 6238 (TOTP) written
// out here on node:crypto's createHmac, with its own base32 decoder. It imports nothing from src/,
// so a bug in the generator under test (truncation, counter encoding, base32, digits) cannot also
// produce the "expected" value. test/unit/otp.test.ts checks this oracle against the RFC vectors.

import { createHmac } from "node:crypto";

export type OracleAlgorithm = "SHA1" | "SHA256" | "SHA512";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding, upper or lower case; spaces are ignored. Throws on anything else. */
export function oracleBase32(text: string): Buffer {
  const clean = text.replace(/\s+/g, "").toUpperCase();
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of clean) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`oracle: not base32: ${JSON.stringify(ch)}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
    value &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

/** RFC 4226 5.3: HMAC over the 8-byte big-endian counter, dynamic truncation, modulo 10^digits. */
export function oracleHotp(key: Uint8Array, counter: number | bigint, digits = 6, algorithm: OracleAlgorithm = "SHA1"): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt.asUintN(64, BigInt(counter)));
  const mac = createHmac(algorithm.toLowerCase(), key).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** RFC 6238 4.2: T = floor((unix time - T0) / X), then HOTP. */
export function oracleTotp(key: Uint8Array, unixSeconds: number, stepSeconds = 30, digits = 6, algorithm: OracleAlgorithm = "SHA1"): string {
  return oracleHotp(key, Math.floor(unixSeconds / stepSeconds), digits, algorithm);
}

/** The code for a base32 secret (as on line 1 of a state file) at a step or counter. */
export function oracleCode(secret: string, counter: number, algorithm: OracleAlgorithm = "SHA1", digits = 6): string {
  return oracleHotp(oracleBase32(secret), counter, digits, algorithm);
}

/** A 6-digit code that the oracle says matches none of the counters in [from, to]. */
export function oracleWrongCode(secret: string, from: number, to: number): string {
  const used = new Set<string>();
  for (let c = from; c <= to; c++) used.add(oracleCode(secret, c));
  for (let n = 0; ; n++) {
    const candidate = String((n * 7919) % 1_000_000).padStart(6, "0");
    if (!used.has(candidate)) return candidate;
  }
}
