// What the gateway's own pages share, over GatewayRequest/GatewayResponse: the security headers
// every page carries, the CSRF cookie and token, reading a small url-encoded form with a size limit.
// (It replaces page-context.ts, which worked on node:http objects.)

import { parseCookies } from "../../core/web/cookies.js";
import { headerValue, headerValues } from "../../core/web/headers.js";
import type { Random } from "../../ports/index.js";
import type { GatewayRequest, GatewayResponse, HeaderList } from "./gateway-types.js";

export const MAX_FORM = 4096;
export const CSRF_COOKIE = "otpgate_csrf";

/** CSRF tokens bound to the pre-session cookie's id (the keyring provides them). */
export interface CsrfTokens {
  token(id: string): string;
  valid(id: string, token: string | undefined): boolean;
}

export interface PageKit {
  /** Cookies get Secure (and pages HSTS) behind an https public URL. */
  readonly secure: boolean;
  /** An HTML (or empty) response with the security headers every gateway page carries. */
  page(status: number, body: string, headers?: HeaderList): GatewayResponse;
  /** The request's cookies (all Cookie headers). */
  cookies(req: GatewayRequest): Map<string, string>;
  /** The CSRF token for a form; pushes the Set-Cookie value of a new pre-session cookie onto `setCookies`. */
  csrfFor(req: GatewayRequest, setCookies: string[]): string;
  csrfOk(req: GatewayRequest, form: URLSearchParams): boolean;
  /** A url-encoded form of at most MAX_FORM bytes, or null (wrong type, too large, unreadable). */
  readForm(req: GatewayRequest): Promise<URLSearchParams | null>;
}

const SECURITY_HEADERS: HeaderList = [
  ["cache-control", "no-store"],
  ["content-security-policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"],
  ["x-frame-options", "DENY"],
  ["x-content-type-options", "nosniff"],
  ["referrer-policy", "no-referrer"],
];

export function createPageKit(options: { secure: boolean; pagesPrefix: string; csrf: CsrfTokens; random: Random; csrfCookie?: { readonly name: string; readonly attributes: string } }): PageKit {
  const { secure, pagesPrefix, csrf, random } = options;
  // cookie-names.ts gives the name and attributes (__Host-, Path=/ behind https); the default is the old one.
  const csrfName = options.csrfCookie?.name ?? CSRF_COOKIE;
  const csrfAttributes = options.csrfCookie?.attributes ?? `Path=${pagesPrefix}; HttpOnly${secure ? "; Secure" : ""}`;
  const kit: PageKit = {
    secure,
    page(status, body, headers = []) {
      const given = new Set(headers.map(([n]) => n));
      const out: [string, string][] = [];
      if (!given.has("content-type")) out.push(["content-type", "text/html; charset=utf-8"]);
      for (const h of SECURITY_HEADERS) if (!given.has(h[0])) out.push([h[0], h[1]]);
      if (secure && !given.has("strict-transport-security")) out.push(["strict-transport-security", "max-age=31536000"]);
      for (const [n, v] of headers) out.push([n, v]);
      return { status, headers: out, body };
    },
    cookies(req) {
      return parseCookies(headerValues(req.headers, "cookie"));
    },
    csrfFor(req, setCookies) {
      let id = kit.cookies(req).get(csrfName);
      if (!id || !/^[A-Za-z0-9_-]{20,64}$/.test(id)) {
        id = Buffer.from(random.bytes(18)).toString("base64url");
        setCookies.push(`${csrfName}=${id}; ${csrfAttributes}; SameSite=Strict`);
      }
      return csrf.token(id);
    },
    csrfOk(req, form) {
      return csrf.valid(kit.cookies(req).get(csrfName) ?? "", form.get("csrf") ?? undefined);
    },
    async readForm(req) {
      if (!(headerValue(req.headers, "content-type") ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) return null;
      const declared = headerValue(req.headers, "content-length");
      if (declared !== undefined && !(Number(declared) <= MAX_FORM)) return null;
      if (!req.body) return new URLSearchParams();
      const chunks: Uint8Array[] = [];
      let size = 0;
      try {
        for await (const chunk of req.body) {
          size += chunk.length;
          if (size > MAX_FORM) return null;
          chunks.push(chunk);
        }
      } catch {
        return null;
      }
      return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
    },
  };
  return kit;
}
