import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { test } from "node:test";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildAccessRequest, buildResponse, decodePassword, decodeToken, encodePassword, parseAccessRequest, RadiusError } from "../../src/adapters/radius/packet.js";

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

// Packets built here by hand from RFC 2865/3579 with node:crypto, not with the codec's encoder.
const md5 = (...parts: Uint8Array[]): Buffer => parts.reduce((h, p) => h.update(p), createHash("md5")).digest();
const attr = (type: number, value: Uint8Array): Buffer => Buffer.concat([Buffer.from([type, value.length + 2]), Buffer.from(value)]);
/** RFC 2865 5.2 by hand: one 16-byte block, plaintext padded with NULs (or given raw). */
const hide = (plain: Buffer, secret: Buffer = SECRET, ra: Buffer = RA): Buffer => {
  const p = Buffer.alloc(16);
  plain.copy(p);
  const b = md5(secret, ra);
  return Buffer.from(p.map((c, i) => c ^ b[i]!));
};
function handmade(opts: { user?: string; plain?: Buffer; ma?: "right" | "wrong" | "short" | "long" | "twice"; secret?: Buffer }): Buffer {
  const secret = opts.secret ?? SECRET;
  const parts: Buffer[] = [Buffer.from([1, 42, 0, 0]), RA, attr(1, Buffer.from(opts.user ?? "alice")), attr(2, hide(opts.plain ?? Buffer.from("123456"), secret))];
  const maLen = opts.ma === "short" ? 8 : opts.ma === "long" ? 20 : 16;
  if (opts.ma) parts.push(attr(80, Buffer.alloc(maLen)));
  if (opts.ma === "twice") parts.push(attr(80, Buffer.alloc(16)));
  const packet = Buffer.concat(parts);
  packet.writeUInt16BE(packet.length, 2);
  if (opts.ma) {
    const at = packet.indexOf(Buffer.from([80, maLen + 2]), 20) + 2;
    const mac = createHmac("md5", secret).update(packet).digest();
    if (opts.ma === "wrong") mac[0]! ^= 1;
    mac.copy(packet, at, 0, Math.min(16, maLen));
  }
  return packet;
}

test("Message-Authenticator (RFC 3579) checked against independently computed HMAC-MD5: right passes, wrong, wrong length or two fail", () => {
  assert.equal(parseAccessRequest(handmade({}), SECRET).password, "123456", "none at all (pam_radius_auth 2.0.0 on loopback) is fine");
  assert.equal(parseAccessRequest(handmade({ ma: "right" }), SECRET).user, "alice");
  assert.throws(
    () => parseAccessRequest(handmade({ ma: "wrong" }), SECRET),
    (e: unknown) => e instanceof RadiusError && e.reason === "bad-message-authenticator",
  );
  for (const ma of ["short", "long", "twice"] as const) {
    assert.throws(() => parseAccessRequest(handmade({ ma }), SECRET), /wrong Message-Authenticator/, `a Message-Authenticator ${ma} fails`);
  }
  assert.throws(() => parseAccessRequest(handmade({ ma: "right", secret: Buffer.from("another-secret-0000") }), SECRET), /Message-Authenticator/);
});

test("the User-Password must be a 6-8 digit code padded with NULs: forged requests (another secret) are refused", () => {
  const ok = ["123456", "0000000", "12345678"];
  for (const code of ok) assert.equal(parseAccessRequest(handmade({ plain: Buffer.from(code) }), SECRET).password, code);
  const bad = [Buffer.from("12345"), Buffer.from("123456789"), Buffer.from("12345a"), Buffer.from(" 123456"), Buffer.from("123456\0\0x"), Buffer.from("1234\x0056"), Buffer.from("123456\n")];
  for (const plain of bad) {
    assert.throws(
      () => parseAccessRequest(handmade({ plain }), SECRET),
      (e: unknown) => e instanceof RadiusError && e.reason === "bad-password",
      JSON.stringify(plain.toString("latin1")),
    );
  }
  assert.throws(() => parseAccessRequest(handmade({ secret: Buffer.from("the-attacker-guess-00") }), SECRET), /not a 6-8 digit code/);
  // Two blocks (a long password) are never a code.
  assert.equal(decodeToken(encodePassword("1234567890123456789", SECRET, RA), SECRET, RA), null);
  // A random User-Password, as a forger without the secret must send, is refused every time.
  let passed = 0;
  for (let i = 0; i < 20_000; i++) if (decodeToken(md5(Buffer.from(String(i))), SECRET, RA) !== null) passed++;
  assert.equal(passed, 0);
});
