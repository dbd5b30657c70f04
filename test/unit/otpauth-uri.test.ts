import assert from "node:assert/strict";
import { test } from "node:test";
import { buildKeyUri, gaEscape, parseKeyUri } from "../../src/core/otpauth-uri.js";

test("google-authenticator style: only the label and issuer, escaped like the reference tool", () => {
  assert.equal(gaEscape("bob:x/y#z+é"), "bob:x/y#z+%C3%A9");
  assert.equal(gaEscape("a b&c?d=e%"), "a%20b%26c%3Fd%3De%25");
  assert.equal(buildKeyUri({ type: "totp", label: "alice@host", issuer: "host", secret: "JBSWY3DPEHPK3PXP" }, "google-authenticator"), "otpauth://totp/alice@host?secret=JBSWY3DPEHPK3PXP&issuer=host");
});

test("standard style adds the issuer prefix and the parameters the app needs", () => {
  const uri = buildKeyUri({ type: "totp", label: "alice", issuer: "ACME Co", secret: "JBSWY3DPEHPK3PXP", algorithm: "SHA256", digits: 8, period: 60 });
  assert.equal(uri, "otpauth://totp/ACME%20Co:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60");
  assert.deepEqual(parseKeyUri(uri), { type: "totp", label: "alice", issuer: "ACME Co", secret: "JBSWY3DPEHPK3PXP", algorithm: "SHA256", digits: 8, period: 60, counter: undefined });
});

test("parse accepts lower-case padded secrets and HOTP counters", () => {
  const p = parseKeyUri("otpauth://hotp/Example:bob?secret=jbswy3dpehpk3pxp%3D%3D&counter=7");
  assert.equal(p.type, "hotp");
  assert.equal(p.issuer, "Example");
  assert.equal(p.label, "bob");
  assert.equal(p.counter, 7);
});

test("parse rejects what is not a usable key URI, saying why", () => {
  assert.throws(() => parseKeyUri("https://example.com/"), /not an otpauth/);
  assert.throws(() => parseKeyUri("otpauth://totp/x?issuer=a"), /no secret/);
  assert.throws(() => parseKeyUri("otpauth://totp/x?secret=!!!"), /not valid base32/);
  assert.throws(() => parseKeyUri("otpauth://totp/x?secret=JBSWY3DP&digits=10"), /digits must be/);
  assert.throws(() => parseKeyUri("otpauth://totp/x?secret=JBSWY3DP&algorithm=MD5"), /unsupported algorithm/);
  assert.throws(() => parseKeyUri("otpauth://totp/%E0%A4%A?secret=JBSWY3DP"), /percent-encoding/);
});
