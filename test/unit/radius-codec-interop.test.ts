// The RADIUS codec (src/adapters/radius/packet.ts) against an independent implementation, the
// `radius` npm package (node-radius 1.1.4, a dev dependency): requests it encodes are decoded by
// ours, and responses ours builds are verified (Response Authenticator, Message-Authenticator) and
// decoded by it. Until now the codec was tested only against its own encoder.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { test } from "node:test";
import fc from "fast-check";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildAccessRequest, buildResponse, decodePassword, parseAccessRequest, RadiusError } from "../../src/adapters/radius/packet.js";

/** The part of node-radius's (untyped) API used here. */
interface NodeRadius {
  encode(args: { code: string; secret: string; identifier?: number; attributes: [string, string | Buffer][]; add_message_authenticator?: boolean }): Buffer;
  decode(args: { packet: Buffer; secret: string }): { code: string; identifier: number; attributes: Record<string, string | Buffer | undefined> };
  verify_response(args: { request: Buffer; response: Buffer; secret: string }): boolean;
}
const radius = createRequire(import.meta.url)("radius") as NodeRadius;

const SECRET = "interop-shared-secret-4f2a";
const KEY = Buffer.from(SECRET);

const request = (password: string, opts: { messageAuthenticator?: boolean; secret?: string; id?: number; extra?: [string, string][] } = {}) =>
  radius.encode({
    code: "Access-Request",
    secret: opts.secret ?? SECRET,
    identifier: opts.id ?? 42,
    attributes: [["User-Name", "alice"], ["User-Password", password], ...(opts.extra ?? [])],
    add_message_authenticator: opts.messageAuthenticator ?? false,
  });

/** Offset of the value of the first attribute of a type in a packet (after its 2-byte header). */
function attributeValue(packet: Buffer, type: number): number {
  for (let off = 20; off < packet.length; off += packet[off + 1]!) if (packet[off] === type) return off + 2;
  throw new Error(`no attribute ${type}`);
}

function hasAttribute(packet: Buffer, type: number): boolean {
  for (let off = 20; off < packet.length; off += packet[off + 1]!) if (packet[off] === type) return true;
  return false;
}

test("requests encoded by node-radius: 6, 7 and 8-digit codes are decoded by ours, with and without Message-Authenticator", () => {
  for (const code of ["000000", "123456", "9876543", "12345678"]) {
    for (const messageAuthenticator of [false, true]) {
      const packet = request(code, {
        messageAuthenticator,
        id: 7,
        extra: [
          ["NAS-Identifier", "sshd"],
          ["Calling-Station-Id", "192.0.2.9"],
        ],
      });
      assert.equal(hasAttribute(packet, 80), messageAuthenticator, "node-radius added the Message-Authenticator as asked");
      const parsed = parseAccessRequest(packet, KEY);
      assert.equal(parsed.password, code, `${code} with${messageAuthenticator ? "" : "out"} Message-Authenticator`);
      assert.equal(parsed.user, "alice");
      assert.equal(parsed.id, 7);
      assert.equal(parsed.nasIdentifier, "sshd");
      assert.equal(parsed.callingStationId, "192.0.2.9");
      assert.deepEqual(parsed.authenticator, packet.subarray(4, 20));
    }
  }
});

test("requests encoded by node-radius: passwords that are not a 6-8 digit code in one block are refused as bad-password, at every length", () => {
  const refused = ["1", "12345", "123456789", "1234567890123456", "12345a", "abcdefgh", "12345678901234567", "x".repeat(40), "1".repeat(128), "123456 ", " 123456"];
  for (const pw of refused) {
    assert.throws(
      () => parseAccessRequest(request(pw), KEY),
      (e: unknown) => e instanceof RadiusError && e.reason === "bad-password" && /6-8 digit code/.test(e.message),
      `${JSON.stringify(pw)} (${pw.length} bytes)`,
    );
  }
});

test("property: the general PAP decoder recovers any password of 1..128 bytes that node-radius hid (RFC 2865 5.2, multi-block chaining)", () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[\x21-\x7e]{1,128}$/), fc.uint8Array({ minLength: 16, maxLength: 16 }), (pw, ra) => {
      const packet = radius.encode({
        code: "Access-Request",
        secret: SECRET,
        attributes: [
          ["User-Name", "bob"],
          ["User-Password", pw],
        ],
      });
      const authenticator = packet.subarray(4, 20);
      const hidden = packet.subarray(attributeValue(packet, 2), attributeValue(packet, 2) + packet[attributeValue(packet, 2) - 1]! - 2);
      assert.equal(hidden.length, Math.ceil(pw.length / 16) * 16);
      assert.equal(decodePassword(hidden, KEY, authenticator), pw);
      assert.notEqual(decodePassword(hidden, KEY, Buffer.from(ra)), pw, "the Request Authenticator is part of the key stream");
    }),
    { numRuns: 300 },
  );
});

test("a Message-Authenticator that does not verify is refused: one flipped bit, a wrong shared secret, the packet altered after signing", () => {
  const good = request("123456", { messageAuthenticator: true });
  const flipped = Buffer.from(good);
  flipped[attributeValue(flipped, 80) + 5]! ^= 0x01;
  const otherSecret = request("123456", { messageAuthenticator: true, secret: "not-the-shared-secret" });
  const altered = Buffer.from(good);
  altered[1] = (altered[1]! + 1) & 0xff; // the identifier is covered by the HMAC
  for (const [name, packet] of [
    ["flipped bit", flipped],
    ["other secret", otherSecret],
    ["altered identifier", altered],
  ] as const) {
    assert.throws(
      () => parseAccessRequest(packet, KEY),
      (e: unknown) => e instanceof RadiusError && e.reason === "bad-message-authenticator" && /shared secret/.test(e.message),
      name,
    );
  }
  // (node-radius is not asked here: it compares the two HMACs as UTF-8 strings, so invalid bytes
  // collapse to U+FFFD and a flipped bit sometimes passes there.)
  assert.equal(parseAccessRequest(good, KEY).password, "123456");
});

test("a request without Message-Authenticator under a wrong secret decodes to garbage and is refused as bad-password", () => {
  assert.throws(
    () => parseAccessRequest(request("123456", { secret: "wrong" }), KEY),
    (e: unknown) => e instanceof RadiusError && e.reason === "bad-password",
  );
});

test("our responses verify with node-radius: Response Authenticator, and Message-Authenticator when asked for it", () => {
  for (const code of [ACCESS_ACCEPT, ACCESS_REJECT] as const) {
    for (const messageAuthenticator of [false, true]) {
      const req = request("123456", { messageAuthenticator, id: 200 });
      const parsed = parseAccessRequest(req, KEY);
      const res = buildResponse(code, parsed, KEY, messageAuthenticator);
      assert.equal(radius.verify_response({ request: Buffer.from(req), response: Buffer.from(res), secret: SECRET }), true, `code ${code}, MA ${messageAuthenticator}`);
      const decoded = radius.decode({ packet: Buffer.from(res), secret: SECRET });
      assert.equal(decoded.code, code === ACCESS_ACCEPT ? "Access-Accept" : "Access-Reject");
      assert.equal(decoded.identifier, 200);
      assert.equal(Buffer.isBuffer(decoded.attributes["Message-Authenticator"]), messageAuthenticator);
      // A tampered response or a wrong secret does not verify.
      const tampered = Buffer.from(res);
      tampered[0] = code === ACCESS_ACCEPT ? ACCESS_REJECT : ACCESS_ACCEPT;
      assert.equal(radius.verify_response({ request: Buffer.from(req), response: tampered, secret: SECRET }), false);
      assert.equal(radius.verify_response({ request: Buffer.from(req), response: Buffer.from(res), secret: "wrong" }), false);
    }
  }
});

test("a response to a request that carried a Message-Authenticator must carry one too (node-radius refuses it otherwise)", () => {
  const req = request("123456", { messageAuthenticator: true });
  const parsed = parseAccessRequest(req, KEY);
  assert.equal(radius.verify_response({ request: Buffer.from(req), response: buildResponse(ACCESS_ACCEPT, parsed, KEY, false), secret: SECRET }), false);
  assert.equal(radius.verify_response({ request: Buffer.from(req), response: buildResponse(ACCESS_ACCEPT, parsed, KEY, true), secret: SECRET }), true);
});

test("our test encoder's requests are decoded by node-radius (User-Name, User-Password)", () => {
  for (const pw of ["123456", "12345678", "0123456789abcdef", "y".repeat(33)]) {
    const packet = buildAccessRequest(9, randomBytes(16), "carol", pw, KEY);
    const decoded = radius.decode({ packet, secret: SECRET });
    assert.equal(decoded.code, "Access-Request");
    assert.equal(decoded.identifier, 9);
    assert.equal(decoded.attributes["User-Name"], "carol");
    assert.equal(decoded.attributes["User-Password"], pw);
  }
});
