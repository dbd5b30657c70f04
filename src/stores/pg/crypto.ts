// Secrets at rest and emergency-code digests for the fleet store (issue 11).
// - A secret line is sealed with AES-256-GCM under the key file's key `keyId`: a fresh 12-byte IV,
//   and additional data binding the ciphertext to the user name and key id, so a row's secret
//   copied onto another user (or relabelled with another key id) does not decrypt. Stored as
//   IV || ciphertext || tag.
// - An emergency code is stored as HMAC-SHA-256 over user NUL code (8 digits), keyed with a key
//   derived by HKDF from the key file's key `keyId`: a database dump alone reveals no code, and a
//   digest is bound to its user.

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import type { FleetKeys } from "./key-file.js";
import { FleetKeyMissing, FleetRowInvalid } from "./errors.js";

const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyOf(keys: FleetKeys, keyId: string): Buffer {
  const key = keys.keys.get(keyId);
  if (key === undefined) throw new FleetKeyMissing(keyId, keys.path);
  return key;
}

const aadOf = (user: string, keyId: string) => Buffer.from(`otpgate secret v1\0${user}\0${keyId}`, "utf8");

/** Encrypt a secret line (latin1 bytes) for `user` under the current key. */
export function sealSecret(keys: FleetKeys, user: string, secretLine: string): { keyId: string; sealed: Buffer } {
  const keyId = keys.current;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keyOf(keys, keyId), iv);
  cipher.setAAD(aadOf(user, keyId));
  const plain = Buffer.from(secretLine, "latin1");
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  return { keyId, sealed: Buffer.concat([iv, body, cipher.getAuthTag()]) };
}

/** Decrypt a stored secret; the plaintext buffer is the caller's to zero after use. */
export function openSecret(keys: FleetKeys, user: string, keyId: string, sealed: Buffer): Buffer {
  const key = keyOf(keys, keyId);
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new FleetRowInvalid(`the stored secret of ${JSON.stringify(user)} is truncated; re-enroll the user (otpgate enroll --store ...)`);
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, IV_BYTES));
  decipher.setAAD(aadOf(user, keyId));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new FleetRowInvalid(`the stored secret of ${JSON.stringify(user)} does not decrypt under key ${keyId} (altered, or copied from another account); the login is refused: re-enroll the user`);
  }
}

const derived = new WeakMap<Buffer, Buffer>();

/** The digest key of key id `keyId` (HKDF-SHA-256 of the file's key; cached per key). */
function digestKey(keys: FleetKeys, keyId: string): Buffer {
  const key = keyOf(keys, keyId);
  let d = derived.get(key);
  if (d === undefined) {
    d = Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), "otpgate emergency codes v1", 32));
    derived.set(key, d);
  }
  return d;
}

/** The stored digest of emergency code `code` (8 digits) of `user` under key `keyId`. */
export function codeDigest(keys: FleetKeys, keyId: string, user: string, code: string): Buffer {
  return createHmac("sha256", digestKey(keys, keyId)).update(`${user}\0${code}`, "utf8").digest();
}

/** Constant-time comparison of two digests. */
export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
