// RADIUS (RFC 2865) for one job: answering pam_radius_auth's Access-Request with PAP, so the PAM
// module asks "Verification code: " itself and no process starts per login. Also RFC 3579's
// Message-Authenticator when the client sends one.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const ACCESS_REQUEST = 1;
export const ACCESS_ACCEPT = 2;
export const ACCESS_REJECT = 3;

export const ATTR = { userName: 1, userPassword: 2, replyMessage: 18, callingStationId: 31, nasIdentifier: 32, messageAuthenticator: 80 } as const;

export interface AccessRequest {
  readonly id: number;
  readonly authenticator: Buffer;
  readonly user: string;
  readonly password: string;
  readonly nasIdentifier?: string | undefined;
  readonly callingStationId?: string | undefined;
}

export type DropReason = "malformed" | "bad-message-authenticator" | "bad-password" | "not-pap";

export class RadiusError extends Error {
  override name = "RadiusError";
  constructor(
    message: string,
    readonly reason: DropReason = "malformed",
  ) {
    super(message);
  }
}

const md5 = (...parts: Buffer[]) => {
  const h = createHash("md5");
  for (const p of parts) h.update(p);
  return h.digest();
};

function attributes(packet: Buffer): Map<number, Buffer[]> {
  const attrs = new Map<number, Buffer[]>();
  let off = 20;
  while (off < packet.length) {
    const type = packet[off]!;
    const len = packet[off + 1] ?? 0;
    if (len < 2 || off + len > packet.length) throw new RadiusError("malformed attribute");
    const list = attrs.get(type) ?? [];
    list.push(packet.subarray(off + 2, off + len));
    attrs.set(type, list);
    off += len;
  }
  return attrs;
}

/** Decode PAP's hidden User-Password (RFC 2865 5.2). */
export function decodePassword(hidden: Buffer, secret: Buffer, authenticator: Buffer): string {
  if (hidden.length === 0 || hidden.length % 16 !== 0 || hidden.length > 128) throw new RadiusError("bad User-Password length");
  const out = Buffer.alloc(hidden.length);
  let prev = authenticator;
  for (let i = 0; i < hidden.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = hidden[i + j]! ^ b[j]!;
    prev = hidden.subarray(i, i + 16);
  }
  let end = out.length;
  while (end > 0 && out[end - 1] === 0) end--;
  const text = out.toString("latin1", 0, end);
  out.fill(0);
  return text;
}

export function encodePassword(password: string, secret: Buffer, authenticator: Buffer): Buffer {
  const plain = Buffer.alloc(Math.max(16, Math.ceil(password.length / 16) * 16));
  plain.write(password, "latin1");
  const out = Buffer.alloc(plain.length);
  let prev = authenticator;
  for (let i = 0; i < plain.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = plain[i + j]! ^ b[j]!;
    prev = out.subarray(i, i + 16);
  }
  return out;
}

/**
 * RFC 3579 3.2: HMAC-MD5 over the packet with the attribute's value zeroed. Present means it must
 * verify: one attribute of exactly 18 bytes, or the packet is refused (a wrong length fails, it is
 * not skipped).
 */
function messageAuthenticatorOk(packet: Buffer, secret: Buffer): boolean {
  let off = 20;
  let found = -1;
  while (off < packet.length) {
    const type = packet[off]!;
    const len = packet[off + 1]!;
    if (type === ATTR.messageAuthenticator) {
      if (len !== 18 || found !== -1) return false;
      found = off;
    }
    off += len;
  }
  if (found === -1) return true;
  const copy = Buffer.from(packet);
  const given = Buffer.from(copy.subarray(found + 2, found + 18));
  copy.fill(0, found + 2, found + 18);
  return timingSafeEqual(createHmac("md5", secret).update(copy).digest(), given);
}

/** Shortest and longest one-time code or emergency code that PAP can carry here. */
export const TOKEN_DIGITS = { min: 6, max: 8 } as const;

/**
 * Decode a User-Password that must be a one-time code: 6-8 ASCII digits, then only NUL padding, in
 * one 16-byte block (RFC 2865 5.2). Anything else is null. Without the shared secret the decoded
 * bytes are random, so a forged request passes with a probability below 10^-30: this is the cheap
 * test that lets forged requests be dropped before any user lookup or state change.
 */
export function decodeToken(hidden: Buffer, secret: Buffer, authenticator: Buffer): string | null {
  if (hidden.length !== 16) return null;
  const b = md5(secret, authenticator);
  let digits = 0;
  let ok = true;
  for (let j = 0; j < 16; j++) {
    const c = hidden[j]! ^ b[j]!;
    if (j === digits && c >= 0x30 && c <= 0x39) digits++;
    else if (c !== 0) ok = false;
  }
  if (!ok || digits < TOKEN_DIGITS.min || digits > TOKEN_DIGITS.max) {
    b.fill(0);
    return null;
  }
  let token = "";
  for (let j = 0; j < digits; j++) token += String.fromCharCode(hidden[j]! ^ b[j]!);
  b.fill(0);
  return token;
}

/**
 * Parse and authenticate an Access-Request: refuses malformed packets, a Message-Authenticator that
 * does not verify, and a User-Password that is not a well-formed code (what a request forged
 * without the shared secret decodes to). Only cheap checks: no user lookup, no I/O.
 */
export function parseAccessRequest(packet: Buffer, secret: Buffer): AccessRequest {
  if (packet.length < 20) throw new RadiusError("short packet");
  const length = packet.readUInt16BE(2);
  if (packet[0] !== ACCESS_REQUEST) throw new RadiusError(`not an Access-Request (code ${packet[0]})`);
  if (length < 20 || length > packet.length || length > 4096) throw new RadiusError("bad length");
  const body = packet.subarray(0, length);
  const attrs = attributes(body);
  if (attrs.has(ATTR.messageAuthenticator) && !messageAuthenticatorOk(body, secret)) throw new RadiusError("wrong Message-Authenticator (shared secret mismatch)", "bad-message-authenticator");
  const authenticator = Buffer.from(body.subarray(4, 20));
  const user = attrs.get(ATTR.userName)?.[0];
  const hidden = attrs.get(ATTR.userPassword)?.[0];
  if (!user || !hidden) throw new RadiusError("User-Name and User-Password are required (PAP)", "not-pap");
  const password = decodeToken(hidden, secret, authenticator);
  if (password === null) throw new RadiusError("the password is not a 6-8 digit code (forged, or the shared secret differs)", "bad-password");
  return {
    id: body[1]!,
    authenticator,
    user: user.toString("utf8"),
    password,
    nasIdentifier: attrs.get(ATTR.nasIdentifier)?.[0]?.toString("utf8"),
    callingStationId: attrs.get(ATTR.callingStationId)?.[0]?.toString("utf8"),
  };
}

/** Access-Accept or Access-Reject for a request, with a Message-Authenticator when asked for one. */
export function buildResponse(code: typeof ACCESS_ACCEPT | typeof ACCESS_REJECT, request: Pick<AccessRequest, "id" | "authenticator">, secret: Buffer, withMessageAuthenticator: boolean): Buffer {
  const attrs = withMessageAuthenticator ? Buffer.concat([Buffer.from([ATTR.messageAuthenticator, 18]), Buffer.alloc(16)]) : Buffer.alloc(0);
  const packet = Buffer.concat([Buffer.from([code, request.id, 0, 0]), request.authenticator, attrs]);
  packet.writeUInt16BE(packet.length, 2);
  if (withMessageAuthenticator) createHmac("md5", secret).update(packet).digest().copy(packet, 22);
  md5(packet, secret).copy(packet, 4);
  return packet;
}

export function requestHasMessageAuthenticator(packet: Buffer): boolean {
  try {
    return attributes(packet.subarray(0, packet.readUInt16BE(2))).has(ATTR.messageAuthenticator);
  } catch {
    return false;
  }
}

/** Build an Access-Request (for tests and the benchmark). */
export function buildAccessRequest(id: number, authenticator: Buffer, user: string, password: string, secret: Buffer): Buffer {
  const attr = (type: number, value: Buffer) => Buffer.concat([Buffer.from([type, value.length + 2]), value]);
  const packet = Buffer.concat([
    Buffer.from([ACCESS_REQUEST, id, 0, 0]),
    authenticator,
    attr(ATTR.userName, Buffer.from(user)),
    attr(ATTR.userPassword, encodePassword(password, secret, authenticator)),
  ]);
  packet.writeUInt16BE(packet.length, 2);
  return packet;
}
