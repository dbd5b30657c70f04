// A RADIUS client for the benchmark: one PAP Access-Request per fresh UDP socket (as pam_radius_auth
// sends them), signed with RFC 3579's Message-Authenticator, and the answer checked (its Response
// Authenticator and Message-Authenticator) before it counts. Built on the codec in
// src/adapters/radius/packet.ts; only the signing of the request is added here.

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createSocket } from "node:dgram";
import { ACCESS_ACCEPT, ATTR, buildAccessRequest } from "../src/adapters/radius/packet.js";

/** An Access-Request with a Message-Authenticator (RFC 3579 3.2) appended and computed. */
export function signedAccessRequest(id: number, user: string, code: string, secret: Buffer): Buffer {
  const plain = buildAccessRequest(id, randomBytes(16), user, code, secret);
  const packet = Buffer.concat([plain, Buffer.from([ATTR.messageAuthenticator, 18]), Buffer.alloc(16)]);
  packet.writeUInt16BE(packet.length, 2);
  createHmac("md5", secret)
    .update(packet)
    .digest()
    .copy(packet, packet.length - 16);
  return packet;
}

/** True when `answer` is the server's genuine answer to `request` (authenticators verify). */
export function answerIsGenuine(answer: Buffer, request: Buffer, secret: Buffer): boolean {
  if (answer.length < 20 || answer[1] !== request[1] || answer.readUInt16BE(2) !== answer.length) return false;
  const withRequestAuth = Buffer.from(answer);
  request.copy(withRequestAuth, 4, 4, 20);
  const expected = createHash("md5").update(withRequestAuth).update(secret).digest();
  if (!timingSafeEqual(expected, answer.subarray(4, 20))) return false;
  // The Message-Authenticator of the answer: HMAC-MD5 over it with the request authenticator and the attribute zeroed.
  for (let off = 20; off + 2 <= answer.length; off += answer[off + 1]!) {
    if (answer[off + 1]! < 2) return false;
    if (answer[off] !== ATTR.messageAuthenticator) continue;
    if (answer[off + 1] !== 18) return false;
    const copy = Buffer.from(withRequestAuth);
    copy.fill(0, off + 2, off + 18);
    return timingSafeEqual(createHmac("md5", secret).update(copy).digest(), answer.subarray(off + 2, off + 18));
  }
  return false;
}

export type LoginResult = "accepted" | "rejected" | "timeout" | "forged";

/** One login over RADIUS from a fresh socket; the wall time from send to the checked answer, in ms. */
export async function radiusLogin(port: number, secret: Buffer, user: string, code: string, timeoutMs = 5000): Promise<{ result: LoginResult; ms: number }> {
  const socket = createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  const request = signedAccessRequest(randomBytes(1)[0]!, user, code, secret);
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const done = (result: LoginResult) => {
      clearTimeout(timer);
      socket.close();
      resolve({ result, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    };
    const timer = setTimeout(() => done("timeout"), timeoutMs);
    socket.on("message", (answer) => {
      if (answer[1] !== request[1]) return;
      if (!answerIsGenuine(answer, request, secret)) return done("forged");
      done(answer[0] === ACCESS_ACCEPT ? "accepted" : "rejected");
    });
    socket.send(request, port, "127.0.0.1");
  });
}
