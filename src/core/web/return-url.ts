// Where to send a browser after login: only to the configured hosts, never an open redirect.
// Accepts a local path ("/dashboard?x=1") or an absolute http(s) URL on an allowed host; refuses
// scheme-relative ("//evil"), backslash, "https:evil", control characters and their encoded forms.

export interface ReturnUrlPolicy {
  /** Host names (optionally host:port) the gateway may send users to, lower case. */
  readonly allowedHosts: readonly string[];
  /** Where to go when the requested URL is missing or refused. */
  readonly fallback: string;
}

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

function localPathOk(path: string): boolean {
  return path.startsWith("/") && !path.startsWith("//") && !path.startsWith("/\\");
}

export function safeReturnUrl(raw: string | null | undefined, policy: ReturnUrlPolicy): string {
  if (!raw || raw.length > 2048) return policy.fallback;
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) return policy.fallback;
  const decoded = decodeAll(raw);
  if (decoded === null || /[\u0000-\u001f\u007f\\]/.test(decoded)) return policy.fallback;
  if (raw.startsWith("/")) return localPathOk(raw) && localPathOk(decoded) ? raw : policy.fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return policy.fallback;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return policy.fallback;
  if (!/^https?:\/\/[^/]/i.test(raw)) return policy.fallback; // "https:evil", "https:/evil"
  if (url.username || url.password) return policy.fallback;
  const host = url.host.toLowerCase().replace(/\.$/, "");
  const hostname = url.hostname.toLowerCase().replace(/\.$/, "");
  const allowed = policy.allowedHosts.map((h) => h.toLowerCase());
  return allowed.includes(host) || allowed.includes(hostname) ? url.toString() : policy.fallback;
}
