// RFC 4648 base32: a strict-but-friendly decoder for user input, the lenient decoder that
// pam_google_authenticator applies to line 1 of its state file, and the encoder.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Encode bytes as upper-case RFC 4648 base32 without padding (what google-authenticator writes). */
export function base32Encode(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

function valueOf(ch: number, lenientDigits: boolean): number {
  if (ch >= 0x41 && ch <= 0x5a) return ch - 0x41; // A-Z
  if (ch >= 0x61 && ch <= 0x7a) return ch - 0x61; // a-z
  if (ch >= 0x32 && ch <= 0x37) return ch - 0x32 + 26; // 2-7
  if (lenientDigits) {
    if (ch === 0x30) return 14; // 0 -> O
    if (ch === 0x31) return 11; // 1 -> L
    if (ch === 0x38) return 1; // 8 -> B
  }
  return -1;
}

function decodeWith(text: string, skip: (ch: number) => boolean, lenientDigits: boolean): Uint8Array | null {
  const out = new Uint8Array(Math.ceil((text.length * 5) / 8));
  let count = 0;
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (skip(ch)) continue;
    const v = valueOf(ch, lenientDigits);
    if (v < 0) return null;
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[count++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  const result = out.slice(0, count);
  out.fill(0);
  return result;
}

/**
 * Decode base32 the way pam_google_authenticator decodes line 1: case-insensitive, 0/1/8 read as
 * O/L/B, spaces, tabs, CR, LF and '-' skipped, '=' and anything else rejected, leftover bits dropped.
 * Returns null when the text is not valid or decodes to no bytes.
 */
export function decodeGaSecret(text: string): Uint8Array | null {
  const bytes = decodeWith(text, (ch) => ch === 0x20 || ch === 0x09 || ch === 0x0d || ch === 0x0a || ch === 0x2d, true);
  return bytes && bytes.length > 0 ? bytes : null;
}

/**
 * Decode base32 typed or pasted by a person or found in an otpauth URI: case-insensitive, spaces,
 * tabs, newlines and '-' ignored, trailing '=' padding allowed. Returns null when invalid.
 */
export function base32Decode(text: string): Uint8Array | null {
  const trimmed = text.replace(/=+\s*$/, "");
  if (trimmed.includes("=")) return null;
  const bytes = decodeWith(trimmed, (ch) => ch === 0x20 || ch === 0x09 || ch === 0x0d || ch === 0x0a || ch === 0x2d, false);
  return bytes && bytes.length > 0 ? bytes : null;
}
