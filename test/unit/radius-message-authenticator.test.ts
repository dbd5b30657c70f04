// BlastRADIUS (CVE-2024-3596): Message-Authenticator (RFC 3579) in every answer, and required from
// every client that is not local. Requests and answers are built and checked with the `radius` npm
// package (an independent implementation), not only our own codec.

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { test } from "node:test";
import { RadiusLog } from "../../src/adapters/radius/log.js";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildAccessRequest } from "../../src/adapters/radius/packet.js";
import { radiusServer } from "../../src/adapters/radius/server.js";
import { localClients } from "../../src/adapters/cli/commands/server-main.js";
import type { CachedAccount } from "../../src/platform/user-cache.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { codeAt } from "../helpers/otp.js";

interface RadiusLib {
  encode(args: { code: string; secret: string; identifier: number; attributes: [string, string | Buffer][]; add_message_authenticator?: boolean }): Buffer;
  decode(args: { packet: Buffer; secret: string }): { code: string; attributes: Record<string, unknown> };
  verify_response(args: { request: Buffer; response: Buffer; secret: string }): boolean;
}
const radius = createRequire(import.meta.url)("radius") as RadiusLib;

const SECRET = "unit-test-shared-secret-0002";
const KEY = "JBSWY3DPEHPK3PXP";
const NOW = 1_700_000_000_000;
const ALICE: CachedAccount = { name: "alice", uid: 1001, gid: 1001, home: "/home/alice", groups: [1001] };
const code = () => codeAt(KEY, Math.floor(NOW / 30_000));

function harness(opts: { isLocal?: (a: string) => boolean; allowLegacyClients?: boolean } = {}) {
  const store = new MemoryAccountStore(`${KEY}\n" TOTP_AUTH\n`);
  const sent: Buffer[] = [];
  const lines: string[] = [];
  const lookups: string[] = [];
  const server = radiusServer({
    secret: Buffer.from(SECRET),
    send: (p) => sent.push(p),
    lookup: async (name) => {
      lookups.push(name);
      return name === "alice" ? ALICE : null;
    },
    storeFor: () => store,
    clock: { nowMs: () => NOW },
    log: new RadiusLog({ nowMs: () => NOW, out: (l) => lines.push(l) }),
    nullok: false,
    noSkewAdjust: true,
    rejectFloorMs: 0,
    ...(opts.isLocal ? { isLocal: opts.isLocal } : {}),
    ...(opts.allowLegacyClients ? { allowLegacyClients: true } : {}),
  });
  return { server, sent, lines, lookups, store };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
const signed = (id: number, user: string, password: string) =>
  radius.encode({
    code: "Access-Request",
    secret: SECRET,
    identifier: id,
    attributes: [
      ["User-Name", user],
      ["User-Password", password],
    ],
    add_message_authenticator: true,
  });
const unsigned = (id: number, user: string, password: string) =>
  radius.encode({
    code: "Access-Request",
    secret: SECRET,
    identifier: id,
    attributes: [
      ["User-Name", user],
      ["User-Password", password],
    ],
    add_message_authenticator: false,
  });

/** RFC 3579 3.2 for an answer: HMAC-MD5 over the answer with the request's authenticator and the attribute zeroed. */
function answerSignatureOk(answer: Buffer, request: Buffer): boolean {
  let off = 20;
  while (off < answer.length) {
    if (answer[off] === 80 && answer[off + 1] === 18) {
      const copy = Buffer.from(answer);
      request.copy(copy, 4, 4, 20);
      copy.fill(0, off + 2, off + 18);
      return createHmac("md5", SECRET)
        .update(copy)
        .digest()
        .equals(answer.subarray(off + 2, off + 18));
    }
    off += answer[off + 1]!;
  }
  return false;
}

test("a network client without Message-Authenticator is dropped before any lookup; with one it is answered, and the answer verifies with the radius package", async () => {
  const h = harness();
  h.server.handle(unsigned(1, "alice", code()), { address: "192.0.2.10", port: 40000 });
  await settle();
  assert.equal(h.sent.length, 0, "no answer to an unsigned request from the network");
  assert.deepEqual(h.lookups, [], "dropped before any lookup");
  assert.equal(h.server.counters.unsigned, 1);
  assert.match(h.lines.join(""), /"reason":"no-message-authenticator"/);
  const request = signed(2, "alice", code());
  h.server.handle(request, { address: "192.0.2.10", port: 40001 });
  await settle();
  assert.equal(h.sent.length, 1);
  assert.equal(h.sent[0]![0], ACCESS_ACCEPT);
  assert.equal(radius.verify_response({ request, response: h.sent[0]!, secret: SECRET }), true, "authenticator and Message-Authenticator of the answer verify");
  assert.ok(radius.decode({ packet: h.sent[0]!, secret: SECRET }).attributes["Message-Authenticator"]);
});

test("loopback pam_radius_auth 2.0.0 (no Message-Authenticator) still works, and its answer carries a valid Message-Authenticator", async () => {
  const h = harness();
  const request = buildAccessRequest(7, randomBytes(16), "alice", code(), Buffer.from(SECRET));
  h.server.handle(request, { address: "127.0.0.1", port: 40002 });
  await settle();
  assert.equal(h.sent[0]?.[0], ACCESS_ACCEPT);
  assert.ok(answerSignatureOk(h.sent[0]!, request), "the answer is signed even though the request was not");
  assert.equal(radius.verify_response({ request, response: h.sent[0]!, secret: SECRET }), true);
  // A rejection is signed as well.
  const wrong = buildAccessRequest(8, randomBytes(16), "alice", code() === "000000" ? "111111" : "000000", Buffer.from(SECRET));
  h.server.handle(wrong, { address: "127.0.0.1", port: 40003 });
  await settle();
  assert.equal(h.sent[1]?.[0], ACCESS_REJECT);
  assert.ok(answerSignatureOk(h.sent[1]!, wrong));
});

test("--local-clients decides what is local: 127.0.0.2 configured as remote must sign; --allow-legacy-clients admits it, logged", async () => {
  const isLocal = localClients("127.0.0.1,::1");
  assert.equal(isLocal("127.0.0.1"), true);
  assert.equal(isLocal("::ffff:127.0.0.1"), true);
  assert.equal(isLocal("127.0.0.2"), false);
  assert.equal(localClients("10.0.0.0/8")("10.1.2.3"), true);
  assert.equal(localClients("10.0.0.0/8")("11.1.2.3"), false);
  assert.throws(() => localClients("nonsense"), /not an address/);
  const strict = harness({ isLocal });
  strict.server.handle(buildAccessRequest(1, randomBytes(16), "alice", code(), Buffer.from(SECRET)), { address: "127.0.0.2", port: 40004 });
  await settle();
  assert.equal(strict.sent.length, 0);
  assert.deepEqual(strict.lookups, []);
  const legacy = harness({ isLocal, allowLegacyClients: true });
  legacy.server.handle(buildAccessRequest(1, randomBytes(16), "alice", code(), Buffer.from(SECRET)), { address: "127.0.0.2", port: 40005 });
  await settle();
  assert.equal(legacy.sent[0]?.[0], ACCESS_ACCEPT);
  assert.equal(legacy.server.counters.legacy, 1);
  assert.match(legacy.lines.join(""), /"legacy":"no-message-authenticator"/);
});

test("a forged Message-Authenticator (no secret) is dropped, from the network as from loopback", async () => {
  const h = harness();
  const forged = signed(3, "alice", code());
  forged[forged.length - 1]! ^= 1;
  h.server.handle(forged, { address: "192.0.2.11", port: 40006 });
  h.server.handle(Buffer.from(forged), { address: "127.0.0.1", port: 40007 });
  await settle();
  assert.equal(h.sent.length, 0);
  assert.deepEqual(h.lookups, []);
});
