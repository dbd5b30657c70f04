// HMAC-SHA1 specialised for one-time passwords: the key's inner and outer pad states are computed
// once, so each 8-byte counter costs two SHA-1 compressions. Pure TypeScript; checked against
// node:crypto, RFC 2202 vectors, oathtool and pyotp in the tests.

const W = new Int32Array(80);

function compress(state: Int32Array, block: Int32Array): void {
  for (let i = 0; i < 16; i++) W[i] = block[i]!;
  for (let i = 16; i < 80; i++) {
    const x = W[i - 3]! ^ W[i - 8]! ^ W[i - 14]! ^ W[i - 16]!;
    W[i] = (x << 1) | (x >>> 31);
  }
  let a = state[0]!,
    b = state[1]!,
    c = state[2]!,
    d = state[3]!,
    e = state[4]!;
  for (let i = 0; i < 80; i++) {
    let f: number;
    let k: number;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc | 0;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6 | 0;
    }
    const t = (((a << 5) | (a >>> 27)) + f + e + k + W[i]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
}

const IV = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0];

function wordsOf(bytes: Uint8Array, offset: number, out: Int32Array): void {
  for (let i = 0; i < 16; i++) {
    const j = offset + i * 4;
    out[i] = ((bytes[j] ?? 0) << 24) | ((bytes[j + 1] ?? 0) << 16) | ((bytes[j + 2] ?? 0) << 8) | (bytes[j + 3] ?? 0);
  }
}

/** Plain SHA-1 of a byte string (used to shorten keys longer than one block). */
export function sha1(message: Uint8Array): Uint8Array {
  const length = message.length;
  const padded = new Uint8Array(((length + 8) >> 6) * 64 + 64);
  padded.set(message);
  padded[length] = 0x80;
  const bitLength = length * 8;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  const state = Int32Array.from(IV);
  const block = new Int32Array(16);
  for (let off = 0; off < padded.length; off += 64) {
    wordsOf(padded, off, block);
    compress(state, block);
  }
  return stateBytes(state);
}

function stateBytes(state: Int32Array): Uint8Array {
  const out = new Uint8Array(20);
  for (let i = 0; i < 5; i++) {
    const v = state[i]!;
    out[i * 4] = v >>> 24;
    out[i * 4 + 1] = (v >>> 16) & 0xff;
    out[i * 4 + 2] = (v >>> 8) & 0xff;
    out[i * 4 + 3] = v & 0xff;
  }
  return out;
}

/** HMAC-SHA1 keyed once; `mac` takes any message, `macCounter` the 8-byte big-endian counter fast. */
export interface Sha1Hmac {
  mac(message: Uint8Array): Uint8Array;
  macCounter(high: number, low: number): Uint8Array;
}

export function createSha1Hmac(key: Uint8Array): Sha1Hmac {
  const k = new Uint8Array(64);
  k.set(key.length > 64 ? sha1(key) : key);
  const pad = new Uint8Array(64);
  const block = new Int32Array(16);
  for (let i = 0; i < 64; i++) pad[i] = k[i]! ^ 0x36;
  wordsOf(pad, 0, block);
  const inner = Int32Array.from(IV);
  compress(inner, block);
  for (let i = 0; i < 64; i++) pad[i] = k[i]! ^ 0x5c;
  wordsOf(pad, 0, block);
  const outer = Int32Array.from(IV);
  compress(outer, block);
  k.fill(0);
  pad.fill(0);

  const s = new Int32Array(5);
  const b = new Int32Array(16);

  /** The inner digest is in `s`; run the outer hash over it. */
  function finishOuter(): Uint8Array {
    b.fill(0);
    for (let i = 0; i < 5; i++) b[i] = s[i]!;
    b[5] = 0x80000000 | 0;
    b[15] = (64 + 20) * 8;
    s.set(outer);
    compress(s, b);
    return stateBytes(s);
  }

  return {
    macCounter(high: number, low: number): Uint8Array {
      s.set(inner);
      b.fill(0);
      b[0] = high | 0;
      b[1] = low | 0;
      b[2] = 0x80000000 | 0;
      b[15] = (64 + 8) * 8;
      compress(s, b);
      return finishOuter();
    },
    mac(message: Uint8Array): Uint8Array {
      const length = message.length;
      const padded = new Uint8Array(((length + 8) >> 6) * 64 + 64);
      padded.set(message);
      padded[length] = 0x80;
      const bitLength = (length + 64) * 8;
      const view = new DataView(padded.buffer);
      view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
      view.setUint32(padded.length - 4, bitLength >>> 0);
      s.set(inner);
      for (let off = 0; off < padded.length; off += 64) {
        wordsOf(padded, off, b);
        compress(s, b);
      }
      return finishOuter();
    },
  };
}
