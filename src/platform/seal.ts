// Sealed cookies (AES-256-GCM: encrypted and authenticated) and CSRF tokens (HMAC-SHA256 of the
// session id), with key material from a file created 0600 on first start.

import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync, writeSync, fsyncSync } from "node:fs";
import { ConfigError } from "../core/errors.js";

export interface Keys {
  readonly seal: Buffer;
  readonly csrf: Buffer;
}

/** Read 64 bytes of key material, or create the file (mode 0600, O_EXCL) with fresh random bytes. */
export function loadOrCreateKeys(path: string): Keys {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const material = randomBytes(64);
    writeSync(fd, material);
    fsyncSync(fd);
    closeSync(fd);
    return { seal: material.subarray(0, 32), csrf: material.subarray(32) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new ConfigError(`cannot create the key file ${path} (${(err as NodeJS.ErrnoException).code})`);
  }
  fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o077) !== 0) throw new ConfigError(`${path} must be a regular file with mode 0600 (it holds the session keys): chmod 600 ${path}`);
    const material = Buffer.alloc(64);
    if (readSync(fd, material, 0, 64, 0) !== 64) throw new ConfigError(`${path} is not a key file of 64 bytes; delete it to create a new one (all sessions end)`);
    return { seal: material.subarray(0, 32), csrf: material.subarray(32) };
  } finally {
    closeSync(fd);
  }
}

/** base64url(iv | tag | ciphertext) of a JSON value. */
export function seal(value: unknown, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

/** The sealed value, or null when it was tampered with, truncated or sealed with another key. */
export function unseal<T>(token: string, key: Buffer): T | null {
  if (token.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(token)) return null;
  const raw = Buffer.from(token, "base64url");
  if (raw.length < 29) return null;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
    return JSON.parse(plain.toString("utf8")) as T;
  } catch {
    return null;
  }
}

export function csrfToken(sessionId: string, key: Buffer): string {
  return createHmac("sha256", key).update(`csrf:${sessionId}`).digest("base64url");
}

export function csrfValid(sessionId: string, token: string | undefined, key: Buffer): boolean {
  if (!token) return false;
  const expected = Buffer.from(csrfToken(sessionId, key));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
