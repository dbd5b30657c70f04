// Where to send a browser after login: only to the configured hosts, never an open redirect.
// Accepts a local path ("/dashboard?x=1") or an absolute http(s) URL on an allowed host; refuses
// scheme-relative ("//evil"), backslash, "https:evil", control characters and their encoded forms.
// What it returns can always be written as a Location header: printable ASCII only. Characters
// outside the URI character set (non-ASCII, spaces, quotes, ...) are percent-encoded as UTF-8 the
// same way in local paths, queries and fragments of absolute URLs (URL parsing does it there, and
// host names become punycode); text that cannot be encoded (a lone surrogate) is refused.

export interface ReturnUrlPolicy {
  /** Host names (optionally host:port) the gateway may send users to; Unicode or punycode. */
  readonly allowedHosts: readonly string[];
  /** Where to go when the requested URL is missing or refused. */
  readonly fallback: string;
}

/** Longest return URL accepted as given, and once encoded. */
export const MAX_RETURN_URL = 2048;
const MAX_ENCODED = 4096;

const CONTROL = /[\u0000-\u001f\u007f-\u009f\\]/;
/** Characters a URI may carry as they are (RFC 3986 unreserved, reserved, and "%" of an escape). */
const NOT_URI = /[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/gu;
const PRINTABLE_ASCII = /^[\u0021-\u007e]*$/;

function decodeAll(value: string): string | null {
  let current = value;
  for (let i = 0; i < 3; i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return null;
    }
    if (next === current) return current;
    current = next;
  }
  return current;
}

/** Percent-encode (UTF-8) what a URI cannot carry; null for text that is not well-formed Unicode. */
function encodeUnsafe(value: string): string | null {
  try {
    return value.replace(NOT_URI, (c) => encodeURIComponent(c));
  } catch {
    return null; // a lone surrogate
  }
}

function localPathOk(path: string): boolean {
  return path.startsWith("/") && !path.startsWith("//") && !path.startsWith("/\\");
}

/** "host" and "host:port" as the URL parser writes them (lower case, punycode), or null. */
function canonicalHost(host: string): string | null {
  try {
    const u = new URL(`http://${host}/`);
    return u.host.replace(/\.$/, "");
  } catch {
    return null;
  }
}

export function safeReturnUrl(raw: string | null | undefined, policy: ReturnUrlPolicy): string {
  if (!raw || raw.length > MAX_RETURN_URL) return policy.fallback;
  if (CONTROL.test(raw)) return policy.fallback;
  const decoded = decodeAll(raw);
  if (decoded === null || CONTROL.test(decoded)) return policy.fallback;
  let out: string | null;
  if (raw.startsWith("/")) {
    if (!localPathOk(raw) || !localPathOk(decoded)) return policy.fallback;
    out = encodeUnsafe(raw);
  } else {
    out = absolute(raw, policy);
  }
  return out !== null && out.length <= MAX_ENCODED && PRINTABLE_ASCII.test(out) ? out : policy.fallback;
}

function absolute(raw: string, policy: ReturnUrlPolicy): string | null {
  if (!/^https?:\/\/[^/]/i.test(raw)) return null; // "https:evil", "https:/evil", other schemes
  if (encodeUnsafe(raw) === null) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  if (url.username || url.password) return null;
  const host = url.host.toLowerCase().replace(/\.$/, "");
  const hostname = url.hostname.toLowerCase().replace(/\.$/, "");
  const allowed = policy.allowedHosts.map(canonicalHost);
  if (!allowed.includes(host) && !allowed.includes(hostname)) return null;
  // The parser percent-encodes path, query and fragment; what it leaves (e.g. "|" or "^" in a
  // query) is encoded like in a local path.
  return encodeUnsafe(url.toString());
}
