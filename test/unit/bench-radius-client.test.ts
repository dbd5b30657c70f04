// The benchmark's RADIUS client (bench/radius-client.ts) counts a login only on a genuine
// Access-Accept, so its figures mean something: its signed requests pass the server's codec with the
// Message-Authenticator verified (and fail it under another secret), and an answer counts only when
// its Response Authenticator and Message-Authenticator verify for that request.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { test } from "node:test";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildResponse, parseAccessRequest, RadiusError, requestHasMessageAuthenticator } from "../../src/adapters/radius/packet.js";
import { answerIsGenuine, radiusLogin, signedAccessRequest } from "../../bench/radius-client.js";

const KEY = Buffer.from("bench-client-secret-0123456789");
const OTHER = Buffer.from("another-secret-altogether-9876");

test("a signed request carries a Message-Authenticator the server's codec verifies, and only under the same secret", () => {
  const packet = signedAccessRequest(7, "alice", "123456", KEY);
  assert.equal(requestHasMessageAuthenticator(packet), true);
  const parsed = parseAccessRequest(packet, KEY);
  assert.equal(parsed.user, "alice");
  assert.equal(parsed.password, "123456");
  assert.equal(parsed.id, 7);
  assert.throws(
    () => parseAccessRequest(packet, OTHER),
    (err: unknown) => err instanceof RadiusError && err.reason === "bad-message-authenticator",
  );
  const tampered = Buffer.from(packet);
  tampered[tampered.length - 1]! ^= 1;
  assert.throws(
    () => parseAccessRequest(tampered, KEY),
    (err: unknown) => err instanceof RadiusError && err.reason === "bad-message-authenticator",
  );
});

test("an answer counts only when it is the server's answer to this request under this secret", () => {
  const request = signedAccessRequest(9, "bob", "654321", KEY);
  const parsed = parseAccessRequest(request, KEY);
  const accept = buildResponse(ACCESS_ACCEPT, parsed, KEY, true);
  assert.equal(answerIsGenuine(accept, request, KEY), true);
  assert.equal(answerIsGenuine(buildResponse(ACCESS_REJECT, parsed, KEY, true), request, KEY), true);
  assert.equal(answerIsGenuine(accept, request, OTHER), false, "another secret");
  assert.equal(answerIsGenuine(buildResponse(ACCESS_ACCEPT, parsed, KEY, false), request, KEY), false, "no Message-Authenticator");
  const other = signedAccessRequest(9, "bob", "654321", KEY);
  assert.equal(answerIsGenuine(accept, other, KEY), false, "an answer to another request (other authenticator)");
  const flipped = Buffer.from(accept);
  flipped[0] = ACCESS_REJECT;
  assert.equal(answerIsGenuine(flipped, request, KEY), false, "code changed in transit");
});

test("radiusLogin: accepted only for a genuine Access-Accept; a forged accept is reported as forged", async () => {
  const server = createSocket("udp4");
  await new Promise<void>((r) => server.bind(0, "127.0.0.1", () => r()));
  const port = server.address().port;
  let forge = false;
  server.on("message", (msg, rinfo) => {
    const req = parseAccessRequest(msg, KEY);
    const answer = buildResponse(req.password === "111111" ? ACCESS_ACCEPT : ACCESS_REJECT, req, forge ? OTHER : KEY, true);
    server.send(answer, rinfo.port, rinfo.address);
  });
  try {
    assert.equal((await radiusLogin(port, KEY, "carol", "111111")).result, "accepted");
    assert.equal((await radiusLogin(port, KEY, "carol", "222222")).result, "rejected");
    forge = true;
    assert.equal((await radiusLogin(port, KEY, "carol", "111111")).result, "forged");
  } finally {
    server.close();
  }
});
