import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import { createSha1Hmac, sha1 } from "../../src/core/sha1.js";
import { createCodeGenerator, hotp, timeStep, totp, type Algorithm } from "../../src/core/otp.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { base32Encode, decodeGaSecret } from "../../src/core/base32.js";
import { oracleBase32, oracleHotp, oracleTotp } from "../helpers/otp-oracle.js";

const ascii = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("RFC 4226 Appendix D: HOTP values for counters 0..9", () => {
  const key = ascii("12345678901234567890");
  const expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
  expected.forEach((code, counter) => assert.equal(hotp(key, counter, { algorithm: "SHA1", digits: 6 }, nodeMacFactory), code));
});

test("RFC 6238 Appendix B: TOTP values (8 digits) for SHA1, SHA256, SHA512", () => {
  const keys: Record<Algorithm, Uint8Array> = {
    SHA1: ascii("12345678901234567890"),
    SHA256: ascii("12345678901234567890123456789012"),
    SHA512: ascii("1234567890123456789012345678901234567890123456789012345678901234"),
  };
  const table: [number, string, string, string][] = [
    [59, "94287082", "46119246", "90693936"],
    [1111111109, "07081804", "68084774", "25091201"],
    [1111111111, "14050471", "67062674", "99943326"],
    [1234567890, "89005924", "91819424", "93441116"],
    [2000000000, "69279037", "90698825", "38618901"],
    [20000000000, "65353130", "77737706", "47863826"],
  ];
  for (const [t, s1, s256, s512] of table) {
    for (const [algorithm, code] of [
      ["SHA1", s1],
      ["SHA256", s256],
      ["SHA512", s512],
    ] as const) {
      assert.equal(totp(keys[algorithm], t * 1000, { algorithm, digits: 8, stepSeconds: 30 }, nodeMacFactory), code, `${algorithm} at ${t}`);
    }
  }
});

test("7-digit codes and non-default steps follow the same truncation", () => {
  const key = ascii("12345678901234567890");
  assert.equal(totp(key, 59_000, { algorithm: "SHA1", digits: 7, stepSeconds: 30 }, nodeMacFactory), "4287082");
  assert.equal(timeStep(59_999, 60), 0);
  assert.equal(timeStep(60_000, 60), 1);
  assert.throws(() => createCodeGenerator(key, { algorithm: "SHA1", digits: 5 }, nodeMacFactory), /digits must be 6, 7 or 8/);
  assert.throws(() => createCodeGenerator(key, { algorithm: "SHA1", digits: 9 }, nodeMacFactory), /digits must be 6, 7 or 8/);
});

test("RFC 2202 HMAC-SHA1 vectors and SHA-1 of the empty string and 'abc'", () => {
  assert.equal(hex(sha1(new Uint8Array())), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assert.equal(hex(sha1(ascii("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
  assert.equal(hex(createSha1Hmac(new Uint8Array(20).fill(0x0b)).mac(ascii("Hi There"))), "b617318655057264e28bc0b6fb378c8ef146be00");
  assert.equal(hex(createSha1Hmac(ascii("Jefe")).mac(ascii("what do ya want for nothing?"))), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  assert.equal(hex(createSha1Hmac(new Uint8Array(80).fill(0xaa)).mac(ascii("Test Using Larger Than Block-Size Key - Hash Key First"))), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
});

test("property: the keyed SHA-1 HMAC equals node:crypto for any key, counter and message", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 150 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.uint8Array({ minLength: 0, maxLength: 200 }),
      (key, high, low, message) => {
        const counter = Buffer.alloc(8);
        counter.writeUInt32BE(high, 0);
        counter.writeUInt32BE(low, 4);
        const mac = createSha1Hmac(key);
        assert.equal(hex(mac.macCounter(high, low)), createHmac("sha1", key).update(counter).digest("hex"));
        assert.equal(hex(mac.mac(message)), createHmac("sha1", key).update(message).digest("hex"));
      },
    ),
    { numRuns: 300 },
  );
});

test("negative counters (a large negative TIME_SKEW) wrap like C's unsigned long", () => {
  const key = ascii("12345678901234567890");
  const gen = createCodeGenerator(key, { algorithm: "SHA1", digits: 6 }, nodeMacFactory);
  const message = Buffer.from("ffffffffffffffff", "hex");
  const h = createHmac("sha1", key).update(message).digest();
  const offset = h[19]! & 15;
  const expected = (h.readUInt32BE(offset) & 0x7fffffff) % 1e6;
  assert.equal(gen(-1), expected);
});

test("the test oracle (node:crypto per RFC 4226/6238, no project code) reproduces the RFC vectors", () => {
  const key = ascii("12345678901234567890");
  assert.deepEqual(
    Array.from({ length: 10 }, (_, c) => oracleHotp(key, c)),
    ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"],
  );
  assert.equal(oracleTotp(key, 59, 30, 8, "SHA1"), "94287082");
  assert.equal(oracleTotp(ascii("12345678901234567890123456789012"), 1111111109, 30, 8, "SHA256"), "68084774");
  assert.equal(oracleTotp(ascii("1234567890123456789012345678901234567890123456789012345678901234"), 20000000000, 30, 8, "SHA512"), "47863826");
  assert.deepEqual([...oracleBase32("JBSWY3DPEHPK3PXP")], [...Buffer.from("48656c6c6f21deadbeef", "hex")]);
});

test("property: hotp() and totp() equal the independent oracle for any key, counter, time, algorithm, digits and step", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 10, maxLength: 64 }),
      fc.constantFrom<Algorithm>("SHA1", "SHA256", "SHA512"),
      fc.integer({ min: 6, max: 8 }),
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.integer({ min: 0, max: 2 ** 33 }),
      fc.constantFrom(15, 30, 60, 90),
      (key, algorithm, digits, counter, seconds, step) => {
        assert.equal(hotp(key, counter, { algorithm, digits }, nodeMacFactory), oracleHotp(key, counter, digits, algorithm));
        assert.equal(totp(key, seconds * 1000, { algorithm, digits, stepSeconds: step }, nodeMacFactory), oracleTotp(key, seconds, step, digits, algorithm));
      },
    ),
    { numRuns: 400 },
  );
});

test("property: a secret written by base32Encode decodes (decodeGaSecret) to the bytes the oracle's base32 gives", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (key) => {
      const text = base32Encode(key);
      assert.deepEqual([...decodeGaSecret(text)!], [...key]);
      assert.deepEqual([...oracleBase32(text)], [...key]);
    }),
    { numRuns: 300 },
  );
});
