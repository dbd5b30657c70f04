// What the gateway's pages share: configuration, keys, brute-force regulation, metrics and log, and
// the HTTP details every page gets right the same way (security headers, CSRF cookie, form limits,
// the client's address behind a local proxy).

import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { Regulator } from "../../core/web/index.js";
import { csrfToken, csrfValid, type Keys } from "../../platform/seal.js";
import type { GatewayConfig } from "./gateway-config.js";

export const MAX_FORM = 4096;

export interface GatewayLog {
  (event: Record<string, string | number | boolean>): void;
}

export interface PageContext {
  readonly config: GatewayConfig;
  readonly keys: Keys;
  readonly regulator: Regulator;
  readonly metrics: Record<string, number>;
  readonly log: GatewayLog;
  /** Cookies get Secure (and pages HSTS) behind an https public URL. */
  readonly secure: boolean;
  readonly cookieAttrs: string;
  send(res: ServerResponse, status: number, body: string, headers?: Record<string, string | string[]>): void;
  /** The CSRF token for a form; adds the pre-session cookie to `out.cookies` when it is new. */
  csrfFor(req: IncomingMessage, out: { cookies: string[] }): string;
  csrfOk(req: IncomingMessage, form: URLSearchParams): boolean;
  clientIp(req: IncomingMessage): string;
  /** A url-encoded form of at most MAX_FORM bytes, or null. */
  readForm(req: IncomingMessage): Promise<URLSearchParams | null>;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection"];

export function withoutHopByHop(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const drop = new Set(HOP_BY_HOP);
  for (const token of String(headers.connection ?? "").split(",")) if (token.trim()) drop.add(token.trim().toLowerCase());
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !drop.has(k)) out[k] = v;
  return out;
}

export function createPageContext(config: GatewayConfig, keys: Keys, regulator: Regulator, log: GatewayLog): PageContext {
  const secure = config.publicUrl.protocol === "https:";
  const P = config.pagesPrefix;
  const csrfCookie = "otpgate_csrf";
  return {
    config,
    keys,
    regulator,
    log,
    secure,
    metrics: { logins_ok: 0, logins_failed: 0, bans: 0, upstream_errors: 0, forward_auth_allowed: 0, forward_auth_denied: 0, enrollments: 0 },
    cookieAttrs: `Path=/; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`,
    send(res, status, body, headers = {}) {
      res.writeHead(status, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        ...(secure ? { "strict-transport-security": "max-age=31536000" } : {}),
        ...headers,
      });
      res.end(body);
    },
    csrfFor(req, out) {
      let id = parseCookies(req.headers.cookie).get(csrfCookie);
      if (!id || !/^[A-Za-z0-9_-]{20,64}$/.test(id)) {
        id = randomBytes(18).toString("base64url");
        out.cookies.push(`${csrfCookie}=${id}; Path=${P}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`);
      }
      return csrfToken(id, keys.csrf);
    },
    csrfOk(req, form) {
      return csrfValid(parseCookies(req.headers.cookie).get(csrfCookie) ?? "", form.get("csrf") ?? undefined, keys.csrf);
    },
    clientIp(req) {
      const remote = req.socket.remoteAddress ?? "-";
      const forwarded = String(req.headers["x-forwarded-for"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      return (remote === "127.0.0.1" || remote === "::1" || remote === "::ffff:127.0.0.1") && forwarded.length ? forwarded[forwarded.length - 1]! : remote;
    },
    readForm(req) {
      return new Promise((resolve) => {
        if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return resolve(null);
        if (Number(req.headers["content-length"] ?? 0) > MAX_FORM) return resolve(null);
        const chunks: Buffer[] = [];
        let size = 0;
        req.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_FORM) {
            resolve(null);
            req.destroy();
          } else chunks.push(c);
        });
        req.on("end", () => resolve(size > MAX_FORM ? null : new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
        req.on("error", () => resolve(null));
      });
    },
  };
}
