// otpauth:// Key URIs (the format authenticator apps scan): build and parse.

import type { Algorithm } from "./otp.js";
import { ALGORITHMS } from "./otp.js";
import { base32Decode } from "./base32.js";

export interface KeyUri {
  readonly type: "totp" | "hotp";
  /** Account name shown in the app, e.g. "alice@server". */
  readonly label: string;
  readonly issuer?: string | undefined;
  /** Base32 secret (upper case, no padding). */
  readonly secret: string;
  readonly algorithm?: Algorithm | undefined;
  readonly digits?: number | undefined;
  readonly period?: number | undefined;
  readonly counter?: number | undefined;
}

/**
 * The reference tool's escaping: `% & ? =`, bytes <= 0x20 and >= 0x7F become %XX (upper-case hex,
 * over UTF-8 bytes); everything else, including `/ : # + @`, stays as it is.
 */
export function gaEscape(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const ch = String.fromCharCode(byte);
    out += byte <= 0x20 || byte >= 0x7f || "%&?=".includes(ch) ? "%" + byte.toString(16).toUpperCase().padStart(2, "0") : ch;
  }
  return out;
}

/**
 * Build a Key URI. With `style: "google-authenticator"` the result is exactly what the reference
 * tool encodes in its QR code (label and issuer only, its escaping); parameters it cannot express
 * (algorithm, digits, period other than the defaults) are added after them.
 */
export function buildKeyUri(uri: KeyUri, style: "google-authenticator" | "standard" = "standard"): string {
  const esc = style === "google-authenticator" ? gaEscape : encodeURIComponent;
  const params: string[] = [`secret=${uri.secret}`];
  if (uri.issuer) params.push(`issuer=${esc(uri.issuer)}`);
  if (uri.algorithm && uri.algorithm !== "SHA1") params.push(`algorithm=${uri.algorithm}`);
  if (uri.digits && uri.digits !== 6) params.push(`digits=${uri.digits}`);
  if (uri.period && uri.period !== 30) params.push(`period=${uri.period}`);
  if (uri.type === "hotp" && uri.counter !== undefined) params.push(`counter=${uri.counter}`);
  const label = style === "standard" && uri.issuer ? `${esc(uri.issuer)}:${esc(uri.label)}` : esc(uri.label);
  return `otpauth://${uri.type}/${label}?${params.join("&")}`;
}

export class KeyUriError extends Error {
  override name = "KeyUriError";
}

function intParam(params: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) throw new KeyUriError(`${name} must be a number from ${min} to ${max}, not "${v}"`);
  return Number(v);
}

/** Parse a Key URI; throws KeyUriError with the reason when it is not a usable one. */
export function parseKeyUri(text: string): KeyUri {
  const m = /^otpauth:\/\/(totp|hotp)\/([^?#]*)(?:\?([^#]*))?$/i.exec(text.trim());
  if (!m) throw new KeyUriError("not an otpauth://totp/... or otpauth://hotp/... URI");
  const type = m[1]!.toLowerCase() as "totp" | "hotp";
  let path: string;
  try {
    path = decodeURIComponent(m[2]!);
  } catch {
    throw new KeyUriError("the label is not valid percent-encoding");
  }
  const params = new URLSearchParams(m[3] ?? "");
  const secret = params.get("secret");
  if (!secret) throw new KeyUriError("the URI has no secret parameter");
  const bytes = base32Decode(secret);
  if (!bytes) throw new KeyUriError("the secret is not valid base32");
  const colon = path.indexOf(":");
  const prefix = colon >= 0 ? path.slice(0, colon) : undefined;
  const label = colon >= 0 ? path.slice(colon + 1).trimStart() : path;
  const issuer = params.get("issuer") ?? prefix;
  const algorithmText = params.get("algorithm");
  const algorithm = algorithmText === null ? undefined : ALGORITHMS.find((a) => a === algorithmText.toUpperCase());
  if (algorithmText !== null && !algorithm) throw new KeyUriError(`unsupported algorithm "${algorithmText}"`);
  return {
    type,
    label,
    issuer: issuer || undefined,
    secret: secret.replace(/[\s=-]/g, "").toUpperCase(),
    algorithm,
    digits: intParam(params, "digits", 6, 8),
    period: intParam(params, "period", 1, 3600),
    counter: intParam(params, "counter", 0, Number.MAX_SAFE_INTEGER),
  };
}
