// HOTP (RFC 4226) and TOTP (RFC 6238) code generation for SHA-1, SHA-256 and SHA-512, 6 to 8 digits.

import { createSha1Hmac } from "./sha1.js";

export type Algorithm = "SHA1" | "SHA256" | "SHA512";
export const ALGORITHMS: readonly Algorithm[] = ["SHA1", "SHA256", "SHA512"];

/** Keyed MAC over an arbitrary message; supplied by the platform for SHA-256 and SHA-512. */
export type KeyedMac = (message: Uint8Array) => Uint8Array;
export type MacFactory = (algorithm: Exclude<Algorithm, "SHA1">, key: Uint8Array) => KeyedMac;

export interface OtpParams {
  readonly algorithm: Algorithm;
  readonly digits: number;
}

/** Computes the numeric code for a counter; the key is processed once. */
export type CodeGenerator = (counter: number) => number;

const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

function splitCounter(counter: number): [number, number] {
  if (counter >= 0) return [Math.floor(counter / 0x100000000) >>> 0, counter >>> 0];
  const big = BigInt.asUintN(64, BigInt(counter));
  return [Number(big >> 32n) >>> 0, Number(big & 0xffffffffn) >>> 0];
}

/** RFC 4226 dynamic truncation of an HMAC value to `digits` decimal digits. */
export function truncate(hash: Uint8Array, digits: number): number {
  const offset = hash[hash.length - 1]! & 0x0f;
  const binary = ((hash[offset]! & 0x7f) << 24) | (hash[offset + 1]! << 16) | (hash[offset + 2]! << 8) | hash[offset + 3]!;
  return binary % POW10[digits]!;
}

export function createCodeGenerator(key: Uint8Array, params: OtpParams, macFactory: MacFactory): CodeGenerator {
  if (!Number.isInteger(params.digits) || params.digits < 6 || params.digits > 8) {
    throw new RangeError(`digits must be 6, 7 or 8, not ${params.digits}`);
  }
  const digits = params.digits;
  if (params.algorithm === "SHA1") {
    const hmac = createSha1Hmac(key);
    return (counter) => {
      const [high, low] = splitCounter(counter);
      return truncate(hmac.macCounter(high, low), digits);
    };
  }
  const mac = macFactory(params.algorithm, key);
  const message = new Uint8Array(8);
  const view = new DataView(message.buffer);
  return (counter) => {
    const [high, low] = splitCounter(counter);
    view.setUint32(0, high);
    view.setUint32(4, low);
    return truncate(mac(message), digits);
  };
}

/** The code as the user types it: zero-padded to the number of digits. */
export function formatCode(code: number, digits: number): string {
  return String(code).padStart(digits, "0");
}

/** One HOTP value (RFC 4226), as a zero-padded string. */
export function hotp(key: Uint8Array, counter: number, params: OtpParams, macFactory: MacFactory): string {
  return formatCode(createCodeGenerator(key, params, macFactory)(counter), params.digits);
}

/** RFC 6238 time step for a Unix time in milliseconds. */
export function timeStep(nowMs: number, stepSeconds: number, t0Seconds = 0): number {
  return Math.floor((Math.floor(nowMs / 1000) - t0Seconds) / stepSeconds);
}

/** One TOTP value (RFC 6238) at `nowMs`, as a zero-padded string. */
export function totp(key: Uint8Array, nowMs: number, params: OtpParams & { readonly stepSeconds: number }, macFactory: MacFactory): string {
  return hotp(key, timeStep(nowMs, params.stepSeconds), params, macFactory);
}
