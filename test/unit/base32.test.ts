import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { base32Decode, base32Encode, decodeGaSecret } from "../../src/core/base32.js";

const ascii = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

test("RFC 4648 section 10 vectors encode without padding and decode with or without it", () => {
  const vectors: [string, string][] = [
    ["f", "MY"],
    ["fo", "MZXQ"],
    ["foo", "MZXW6"],
    ["foob", "MZXW6YQ"],
    ["fooba", "MZXW6YTB"],
    ["foobar", "MZXW6YTBOI"],
  ];
  const padded = ["MY======", "MZXQ====", "MZXW6===", "MZXW6YQ=", "MZXW6YTB", "MZXW6YTBOI======"];
  vectors.forEach(([plain, encoded], i) => {
    assert.equal(base32Encode(ascii(plain)), encoded);
    assert.equal(text(base32Decode(encoded)), plain);
    assert.equal(text(base32Decode(padded[i]!)), plain);
    assert.equal(text(base32Decode(encoded.toLowerCase())), plain);
  });
});

test("user input decoding tolerates spaces, dashes and lower case but not junk or inner padding", () => {
  assert.equal(text(base32Decode("mzxw 6ytb-oi")), "foobar");
  assert.equal(base32Decode("MZ=XW"), null);
  assert.equal(base32Decode("MZXW1"), null);
  assert.equal(base32Decode(""), null);
});

test("the reference decoder maps 0/1/8 to O/L/B, skips blanks and dashes, rejects '=' and others", () => {
  assert.deepEqual(decodeGaSecret("0O"), decodeGaSecret("OO"));
  assert.deepEqual(decodeGaSecret("1L"), decodeGaSecret("LL"));
  assert.deepEqual(decodeGaSecret("8B"), decodeGaSecret("BB"));
  assert.deepEqual(decodeGaSecret("MZXW 6YTB-OI\r"), ascii("foobar"));
  assert.equal(decodeGaSecret("MZXW6YTBOI======"), null);
  assert.equal(decodeGaSecret("MZXW6!"), null);
  assert.equal(decodeGaSecret("\u00e9ABC"), null);
  assert.equal(decodeGaSecret(""), null);
  assert.equal(decodeGaSecret("A"), null, "5 bits are not a byte");
});

test("a 26-character secret (1.08) decodes to 16 bytes, a 32-character one (HEAD) to 20", () => {
  assert.equal(decodeGaSecret("HEI3GLJQ5VLAHW5TYBEFVSSVKM")!.length, 16);
  assert.equal(decodeGaSecret("FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ")!.length, 20);
});

test("property: decode(encode(bytes)) returns the bytes, for both decoders", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 80 }), (bytes) => {
      const encoded = base32Encode(bytes);
      assert.deepEqual(base32Decode(encoded), bytes);
      assert.deepEqual(decodeGaSecret(encoded), bytes);
    }),
  );
});
