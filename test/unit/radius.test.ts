import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildAccessRequest, buildResponse, decodePassword, encodePassword, parseAccessRequest, RadiusError } from "../../src/adapters/radius/packet.js";

const SECRET = Buffer.from("testing123-shared-secret");
const RA = Buffer.from("0123456789abcdef");

test("PAP passwords round-trip (RFC 2865 5.2), including 16-byte multiples and long ones", () => {
  for (const pw of ["123456", "0123456789abcdef", "x".repeat(40)]) {
    const hidden = encodePassword(pw, SECRET, RA);
    assert.equal(hidden.length % 16, 0);
    assert.notEqual(hidden.toString("latin1").slice(0, pw.length), pw);
    assert.equal(decodePassword(hidden, SECRET, RA), pw);
  }
  assert.notEqual(decodePassword(encodePassword("123456", SECRET, RA), Buffer.from("wrong-secret"), RA), "123456", "a wrong secret gives garbage");
});

test("Access-Request parsing and the Response Authenticator", () => {
  const req = buildAccessRequest(7, RA, "alice", "654321", SECRET);
  const parsed = parseAccessRequest(req, SECRET);
  assert.equal(parsed.id, 7);
  assert.equal(parsed.user, "alice");
  assert.equal(parsed.password, "654321");
  for (const code of [ACCESS_ACCEPT, ACCESS_REJECT] as const) {
    const res = buildResponse(code, parsed, SECRET, false);
    assert.equal(res[0], code);
    assert.equal(res[1], 7);
    const check = Buffer.from(res);
    RA.copy(check, 4);
    assert.deepEqual(res.subarray(4, 20), createHash("md5").update(check).update(SECRET).digest());
  }
});

test("malformed packets are refused with a reason", () => {
  assert.throws(() => parseAccessRequest(Buffer.alloc(10), SECRET), RadiusError);
  const req = buildAccessRequest(1, RA, "bob", "123456", SECRET);
  const wrongCode = Buffer.from(req);
  wrongCode[0] = 4;
  assert.throws(() => parseAccessRequest(wrongCode, SECRET), /not an Access-Request/);
  const truncated = Buffer.from(req.subarray(0, 24));
  truncated.writeUInt16BE(24, 2);
  assert.throws(() => parseAccessRequest(truncated, SECRET), /malformed attribute/);
  assert.throws(() => parseAccessRequest(buildAccessRequest(1, RA, "bob", "x", SECRET).subarray(0, 27), SECRET), /bad length|required/);
});
