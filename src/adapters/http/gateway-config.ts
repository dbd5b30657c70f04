// otpgate gateway's configuration: a YAML file, validated with messages that name the key.

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../../core/errors.js";
import type { RegulationPolicy, SessionPolicy } from "../../core/web/index.js";

export interface GatewayConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** The URL users reach the gateway at (cookies are Secure when it is https). */
  readonly publicUrl: URL;
  /** Reverse-proxy target; without it the gateway only answers forward-auth. */
  readonly upstream: URL | null;
  /** Path prefix of the gateway's own pages, e.g. /_otpgate. */
  readonly pagesPrefix: string;
  readonly allowedHosts: readonly string[];
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly stateFiles: string;
  readonly keysFile: string;
  readonly session: GatewaySessionPolicy;
  readonly regulation: GatewayRegulationPolicy;
  /** nginx auth_request wants 401; Traefik and Caddy want a redirect to the login page. */
  readonly forwardAuth: "status" | "redirect";
  readonly cookieName: string;
  /** Password factor: argon2id hashes (otpgate passwd); null: user name + code only. */
  readonly passwordFile: string | null;
  /** Pending invitations (otpgate invite); root-only directory. */
  readonly invitesDir: string;
  /** "fast": signed-in requests pass through on a pinned connection; "node": everything through node:http. (Removed by the rework.) */
  readonly proxyEngine: "fast" | "node";
  /** A request head must be complete this long after it starts (slow-header clients are cut). (Becomes limits.headMs.) */
  readonly headTimeoutMs: number;
  /** Peers whose X-Forwarded-For is believed (addresses/CIDRs; default none). */
  readonly trustedProxies: readonly string[];
  /** A separate listener for /metrics; null: metrics only from loopback on the main listener. */
  readonly metricsListen: { readonly host: string; readonly port: number } | null;
  readonly limits: GatewayLimits;
  /** Revocations and per-user "valid after" times, persisted (default: gateway.sessions next to keys_file). */
  readonly sessionsFile: string;
  /** How long an account lookup (NSS/LDAP) may take before the login is refused. */
  readonly userLookupTimeoutMs: number;
  /** Shown in authenticator apps for accounts enrolled through an invitation (default: the host name). */
  readonly issuer: string;
}

export interface GatewayLimits {
  /** A new connection must send its first byte within this. */
  readonly firstByteMs: number;
  /** A request head must be complete this long after its first byte. */
  readonly headMs: number;
  /** A body to the gateway's own pages (login, logout, enroll) must be complete within this. */
  readonly bodyMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveMs: number;
  /** Open connections per client address (IPv6: per /64). */
  readonly connectionsPerAddress: number;
  /** Requests with more header lines are refused (431), never truncated. */
  readonly maxHeaders: number;
}

/** Session policy plus how often a session is checked again against the user's state file (a new secret ends it). */
export interface GatewaySessionPolicy extends SessionPolicy {
  readonly recheckMs: number;
}

/** Regulation plus the per-user slow-down and the memory bound. */
export interface GatewayRegulationPolicy extends RegulationPolicy {
  /** Longest delay a user's attempts get after repeated failures from anywhere (the owner is slowed, never locked out). */
  readonly userDelayMaxMs: number;
  /** Most keys remembered (least recently used forgotten first). */
  readonly maxEntries: number;
}

const DURATION = /^([0-9]+)(ms|s|m|h|d)$/;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function duration(key: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const m = DURATION.exec(String(value));
  if (!m) throw new ConfigError(`${key} must be a duration such as 30s, 5m or 12h, not "${String(value)}"`);
  return Number(m[1]) * UNIT[m[2]!]!;
}

function str(key: string, value: unknown, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== "string" || value === "") throw new ConfigError(`${key} must be a non-empty string`);
  return value;
}

function absolutePath(key: string, value: unknown): string {
  const path = str(key, value);
  if (!path.startsWith("/")) throw new ConfigError(`${key} must be an absolute path, not "${path}"`);
  return path;
}

const KNOWN = new Set(["listen", "public_url", "upstream", "pages_prefix", "allowed_hosts", "tls", "state_files", "keys_file", "session", "regulation", "forward_auth", "cookie_name", "password_file", "invites_dir", "issuer", "proxy_engine", "head_timeout"]);

export function parseGatewayConfig(text: string, source = "config"): GatewayConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(`${source} must be a YAML mapping (key: value lines)`);
  const c = raw as Record<string, unknown>;
  for (const key of Object.keys(c)) if (!KNOWN.has(key)) throw new ConfigError(`${source}: unknown key "${key}" (known: ${[...KNOWN].join(", ")})`);
  const listenText = str("listen", c.listen, "127.0.0.1:9091");
  const lm = /^([0-9.]+|\[[0-9a-f:]+\]|localhost):([0-9]{1,5})$/i.exec(listenText);
  if (!lm || Number(lm[2]) > 65535) throw new ConfigError(`listen must be HOST:PORT, not "${listenText}"`);
  let publicUrl: URL;
  try {
    publicUrl = new URL(str("public_url", c.public_url));
  } catch (err) {
    throw err instanceof ConfigError ? err : new ConfigError(`public_url must be an absolute URL such as https://app.example.com, not "${String(c.public_url)}"`);
  }
  let upstream: URL | null = null;
  if (c.upstream !== undefined) {
    try {
      upstream = new URL(str("upstream", c.upstream));
    } catch {
      throw new ConfigError(`upstream must be a URL such as http://127.0.0.1:8787, not "${String(c.upstream)}"`);
    }
    if (upstream.protocol !== "http:") throw new ConfigError("upstream must be an http:// URL (the gateway and the app talk on loopback)");
  }
  const prefix = str("pages_prefix", c.pages_prefix, "/_otpgate");
  if (!/^\/[A-Za-z0-9._~-]+$/.test(prefix)) throw new ConfigError(`pages_prefix must be one path segment such as /_otpgate, not "${prefix}"`);
  const hosts = c.allowed_hosts ?? [publicUrl.host];
  if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== "string" || !h)) throw new ConfigError("allowed_hosts must be a list of host names");
  let tls: GatewayConfig["tls"] = null;
  if (c.tls !== undefined) {
    const t = c.tls as Record<string, unknown>;
    tls = { cert: str("tls.cert", t?.cert), key: str("tls.key", t?.key) };
    for (const f of [tls.cert, tls.key]) {
      try {
        readFileSync(f);
      } catch {
        throw new ConfigError(`cannot read the TLS file ${f}`);
      }
    }
  }
  const session = (c.session ?? {}) as Record<string, unknown>;
  const reg = (c.regulation ?? {}) as Record<string, unknown>;
  const maxRetries = reg.max_retries === undefined ? 5 : Number(reg.max_retries);
  if (!Number.isInteger(maxRetries) || maxRetries < 1 || maxRetries > 100) throw new ConfigError("regulation.max_retries must be a whole number from 1 to 100");
  const forward = str("forward_auth", c.forward_auth, "status");
  if (forward !== "status" && forward !== "redirect") throw new ConfigError(`forward_auth must be "status" (nginx auth_request) or "redirect" (Traefik, Caddy), not "${forward}"`);
  const headTimeoutMs = duration("head_timeout", c.head_timeout, 30_000);
  if (headTimeoutMs < 1000 || headTimeoutMs > 300_000) throw new ConfigError("head_timeout must be from 1s to 5m");
  const engine = str("proxy_engine", c.proxy_engine, "fast");
  if (engine !== "fast" && engine !== "node") throw new ConfigError(`proxy_engine must be "fast" (default) or "node" (everything through node:http), not "${engine}"`);
  return {
    listen: { host: lm[1]!.replace(/^\[|\]$/g, ""), port: Number(lm[2]) },
    publicUrl,
    upstream,
    pagesPrefix: prefix,
    allowedHosts: (hosts as string[]).map((h) => h.toLowerCase()),
    tls,
    stateFiles: str("state_files", c.state_files, "~/.google_authenticator"),
    keysFile: str("keys_file", c.keys_file, "/var/lib/otpgate/gateway.keys"),
    session: { idleMs: duration("session.idle", session.idle, 30 * 60_000), absoluteMs: duration("session.absolute", session.absolute, 12 * 3_600_000), recheckMs: 60_000 },
    regulation: { maxRetries, findTimeMs: duration("regulation.find_time", reg.find_time, 2 * 60_000), banTimeMs: duration("regulation.ban_time", reg.ban_time, 5 * 60_000), userDelayMaxMs: 10_000, maxEntries: 100_000 },
    forwardAuth: forward,
    cookieName: str("cookie_name", c.cookie_name, "otpgate_session"),
    passwordFile: c.password_file === undefined ? null : absolutePath("password_file", c.password_file),
    invitesDir: absolutePath("invites_dir", c.invites_dir ?? "/var/lib/otpgate/invites"),
    issuer: str("issuer", c.issuer, hostname() || "otpgate"),
    proxyEngine: engine,
    headTimeoutMs,
    // Placeholders until the strict validator reads them (issue 9 rework):
    trustedProxies: [],
    metricsListen: null,
    limits: { firstByteMs: 10_000, headMs: headTimeoutMs, bodyMs: 30_000, keepAliveMs: 5 * 60_000, connectionsPerAddress: 64, maxHeaders: 100 },
    sessionsFile: join(dirname(str("keys_file", c.keys_file, "/var/lib/otpgate/gateway.keys")), "gateway.sessions"),
    userLookupTimeoutMs: 5_000,
  };
}

export function loadGatewayConfig(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code})`);
  }
  return parseGatewayConfig(text, path);
}
