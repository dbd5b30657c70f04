// A new enrollment: the secret, the emergency codes (drawn like google-authenticator draws them),
// the state file and the otpauth URI for the app. Pure; randomness comes in through the Random port.

import type { Random } from "../ports/index.js";
import { base32Encode, decodeGaSecret } from "./base32.js";
import { createCodeGenerator, timeStep, type Algorithm, type MacFactory } from "./otp.js";
import { buildKeyUri } from "./otpauth-uri.js";
import { formatNewStateFile } from "../formats/ga-file.js";

/** 160-bit secrets, like google-authenticator 1.11 and later (RFC 6238's reference key size). */
export const SECRET_BYTES = 20;
export const MAX_SCRATCH_CODES = 10;
export const DEFAULT_SCRATCH_CODES = 5;

export function generateSecret(random: Random): string {
  const bytes = random.bytes(SECRET_BYTES);
  const secret = base32Encode(bytes);
  bytes.fill(0);
  return secret;
}

/**
 * Emergency codes as the reference draws them: 4 random bytes, big-endian, 31 bits, mod 10^8; a
 * value below 10^7 is drawn again, so every code has exactly 8 digits and never starts with 0.
 * Codes are also kept distinct (a duplicate would be consumed twice by one use).
 */
export function generateScratchCodes(count: number, random: Random): number[] {
  const codes: number[] = [];
  while (codes.length < count) {
    const b = random.bytes(4);
    const value = (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) & 0x7fffffff) % 100_000_000;
    if (value >= 10_000_000 && !codes.includes(value)) codes.push(value);
  }
  return codes;
}

export interface EnrollSettings {
  readonly mode: "totp" | "hotp";
  readonly label: string;
  /** Empty string: no issuer parameter. */
  readonly issuer: string;
  readonly disallowReuse: boolean;
  /** undefined: no WINDOW_SIZE line (the module's default 3). */
  readonly windowSize: number | undefined;
  /** undefined: no STEP_SIZE line (30 s). */
  readonly stepSeconds: number | undefined;
  readonly rateLimit: { readonly attempts: number; readonly intervalSeconds: number } | undefined;
  readonly scratchCount: number;
  readonly algorithm: Algorithm;
  readonly digits: number;
}

export interface Credentials {
  readonly secret: string;
  readonly scratchCodes: readonly number[];
}

/** A new secret and `count` emergency codes. */
export function drawCredentials(count: number, random: Random): Credentials {
  return { secret: generateSecret(random), scratchCodes: generateScratchCodes(count, random) };
}

export function keyUriFor(settings: Pick<EnrollSettings, "mode" | "label" | "issuer" | "stepSeconds" | "algorithm" | "digits">, secret: string): string {
  return buildKeyUri(
    {
      type: settings.mode,
      label: settings.label,
      issuer: settings.issuer || undefined,
      secret,
      algorithm: settings.algorithm,
      digits: settings.digits,
      // The reference leaves the step out of the URI (its issue #106), so apps use 30 s and every
      // code fails; otpgate puts a non-default step in.
      period: settings.mode === "totp" ? settings.stepSeconds : undefined,
      counter: settings.mode === "hotp" ? 1 : undefined,
    },
    "google-authenticator",
  );
}

/** The state file for these settings and credentials, as google-authenticator lays it out. */
export function enrollmentText(settings: Omit<EnrollSettings, "label" | "issuer" | "scratchCount">, credentials: Credentials): string {
  return formatNewStateFile({
    secret: credentials.secret,
    mode: settings.mode,
    rateLimit: settings.rateLimit,
    windowSize: settings.windowSize,
    stepSeconds: settings.stepSeconds,
    disallowReuse: settings.disallowReuse,
    scratchCodes: credentials.scratchCodes,
    algorithm: settings.algorithm,
    digits: settings.digits,
  });
}

/** The secret in groups of four, for typing into an app by hand. */
export function groupSecret(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, "$1 ");
}

/**
 * Does `typed` confirm a new TOTP secret at `nowMs`? One step either side is allowed (a code read
 * off the app just as it changes); every step is computed, whatever matches first.
 */
export function confirmsNewSecret(secret: string, params: Pick<EnrollSettings, "stepSeconds" | "algorithm" | "digits">, typed: string, nowMs: number, macFactory: MacFactory): boolean {
  if (!new RegExp(`^[0-9]{${params.digits}}$`).test(typed)) return false;
  const key = decodeGaSecret(secret);
  if (!key) return false;
  const gen = createCodeGenerator(key, { algorithm: params.algorithm, digits: params.digits }, macFactory);
  const now = timeStep(nowMs, params.stepSeconds ?? 30);
  const value = Number(typed);
  let hit = false;
  for (const step of [now - 1, now, now + 1]) hit = gen(step) === value || hit;
  key.fill(0);
  return hit;
}
