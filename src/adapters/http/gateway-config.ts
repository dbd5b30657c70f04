// otpgate gateway's configuration: a YAML file validated strictly at every level, like Authelia's
// validators: unknown keys are errors (with "did you mean"), every value is checked for type and
// range, and EVERY problem is reported at once with its YAML path (`session.idel: unknown key (did
// you mean idle?)`), so one run of --check-config shows all that needs fixing.

import { readFileSync, realpathSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseDocument } from "yaml";
import * as z from "zod";
import { ConfigError } from "../../core/errors.js";
import { userNameProblem } from "../../core/user-name.js";
import { parseIp, parseProxyEntry, type IpRange, type TrustedProxies } from "../../core/web/client-address.js";
import type { RegulationPolicy, SessionPolicy } from "../../core/web/index.js";
import { expandSecretPath } from "../../stores/secret-path.js";
import { fleetUrlProblem } from "../../stores/pg/url.js";
import { stateLocationProblems } from "../../platform/trusted-path.js";

export interface GatewayConfig {
  readonly listen: HostPort;
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
  /**
   * @deprecated The proxy_engine key is gone (one engine: undici); always "node" until the rework
   * removes the fast path's use of it. Typed as both literals so that use still type-checks.
   */
  readonly proxyEngine: "fast" | "node";
  /** @deprecated Use limits.headMs (same value). */
  readonly headTimeoutMs: number;
  /** Peers whose X-Forwarded-For is believed (addresses/CIDRs; default none). */
  readonly trustedProxies: TrustedProxies;
  /** A separate listener for /metrics; null: metrics only from loopback on the main listener. */
  readonly metricsListen: HostPort | null;
  readonly limits: GatewayLimits;
  /** Revocations and per-user "valid after" times, persisted (default: gateway.sessions next to keys_file). */
  readonly sessionsFile: string;
  /** How long an account lookup (NSS/LDAP) may take before the login is refused. */
  readonly userLookupTimeoutMs: number;
  /** Shown in authenticator apps for accounts enrolled through an invitation (default: the host name). */
  readonly issuer: string;
  /**
   * otpgate server's unix socket: logins, session checks and enrollments are asked there, and the
   * gateway needs no access to home directories or invites_dir. null: decided in-process (the
   * gateway must then be able to read the users' state files).
   */
  readonly decisionSocket: string | null;
  /**
   * The user (name or uid) the gateway becomes for good after binding its port(s) when started as
   * root; its files (keys, sessions, password file) belong to it. null: none configured (started as
   * root, the gateway refuses to run).
   */
  readonly runAs: string | null;
  /**
   * The shared state of several gateway instances (issue 11): a postgres:// URL (no password in it)
   * where revocations and bans are kept instead of sessions_file and memory alone. null: none.
   */
  readonly store: string | null;
  /** The database password (first line), a private file of the gateway's user; null: none. */
  readonly storePasswordFile: string | null;
}

export interface HostPort {
  /** An IPv4 or IPv6 address (no brackets) or "localhost". */
  readonly host: string;
  readonly port: number;
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
  /** Requests one user may have at the app at once (until the app's answer is sent); beyond: 503. */
  readonly appRequestsPerUser: number;
  /** A request body on its way to the app may pause at most this long between two chunks. */
  readonly appBodyIdleMs: number;
  /** WebSocket tunnels one user may have open (upgrades in flight included); beyond: 503, nothing reaches the app. */
  readonly tunnelsPerUser: number;
  /** Client connections open at once (node:http server.maxConnections); beyond, a new connection is closed at once. */
  readonly maxConnections: number;
  /** App connections in use at once, all users together (requests at the app, open tunnels, upgrades in flight); beyond: 503. */
  readonly appConnections: number;
  /** Users whose pool of app connections is kept at once (app-pools.ts); while all have requests in flight, another user's gets 503. */
  readonly appPools: number;
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

/** One problem in a configuration file: where (YAML path such as session.idle or trusted_proxies[2]) and what to do. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** The configuration has problems; `problems` lists every one, the message one per line. */
export class GatewayConfigError extends ConfigError {
  constructor(
    readonly source: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    const lines = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
    super(lines.length === 1 ? `${source}: ${lines[0]}` : `${source} has ${lines.length} problems:\n${lines.map((l) => `  ${l}`).join("\n")}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Values. Each check returns the value or calls bad() with what is wrong and what to write.

class Bad extends Error {}
function bad(message: string): never {
  throw new Bad(message);
}

const shown = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : v === null ? "empty" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a mapping" : String(v));

const DURATION = /^([0-9]{1,9})(ms|s|m|h|d)$/;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds as the config writes them: 90s, 5m, 12h, 250ms. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** A duration such as 30s, 5m or 12h (also used for command-line flags); throws ConfigError naming `key`. */
export function duration(key: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const m = DURATION.exec(String(value));
  if (!m) throw new ConfigError(`${key} must be a duration such as 30s, 5m or 12h, not "${String(value)}"`);
  return Number(m[1]) * UNIT[m[2]!]!;
}

function durationIn(min: number, max: number, fallback: number) {
  return (v: unknown): number => {
    if (v === undefined) return fallback;
    const m = typeof v === "string" ? DURATION.exec(v) : null;
    if (!m) bad(`must be a duration: a whole number and a unit (ms, s, m, h or d) such as ${formatDuration(fallback)}, not ${shown(v)}${typeof v === "number" ? ` (write ${v}s or ${v}m)` : ""}`);
    const ms = Number(m[1]) * UNIT[m[2]!]!;
    if (ms < min || ms > max) bad(`must be from ${formatDuration(min)} to ${formatDuration(max)}, not ${v}`);
    return ms;
  };
}

/** regulation.user_delay_max: 1s to 60s (RT-B F6: 0s turned per-user pacing off without a word). */
function userDelayMax(v: unknown): number {
  const ms = durationIn(0, Number.MAX_SAFE_INTEGER, 10_000)(v);
  if (ms > 60_000) bad(`must be from 1s to 1m, not ${String(v)}`);
  if (ms < 1000)
    bad(
      `must be at least 1s (up to 60s; default 10s): below that it turns off per-user pacing, and guessing one user's code from many addresses is then limited by nothing but each address's ban; not ${String(v)}`,
    );
  return ms;
}

function wholeIn(min: number, max: number, fallback: number) {
  return (v: unknown): number => {
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v)) bad(`must be a whole number from ${min} to ${max}, not ${shown(v)}`);
    if (v < min || v > max) bad(`must be from ${min} to ${max}, not ${v}`);
    return v;
  };
}

function text(v: unknown, what: string): string {
  if (typeof v !== "string") bad(`must be ${what}, not ${shown(v)}`);
  if (v === "") bad(`must be ${what}, not empty`);
  if (/[\0-\x1f\x7f]/.test(v)) bad("must not contain control characters");
  return v;
}

function absolutePath(fallback?: string) {
  return (v: unknown): string => {
    if (v === undefined && fallback !== undefined) return fallback;
    const p = text(v, "an absolute path such as /var/lib/otpgate/x");
    if (!p.startsWith("/")) bad(`must be an absolute path (starting with /), not ${shown(p)}`);
    return resolve(p); // one spelling: /a//b, /a/./b and /a/x/../b are /a/b (compared, and locks named, by it)
  };
}

function oneOf<T extends string>(choices: Record<T, string>, fallback: T) {
  return (v: unknown): T => {
    if (v === undefined) return fallback;
    if (typeof v === "string" && Object.hasOwn(choices, v)) return v as T;
    bad(
      `must be ${Object.entries(choices)
        .map(([k, why]) => `${k} (${why})`)
        .join(" or ")}, not ${shown(v)}`,
    );
  };
}

function hostPort(fallback: HostPort | null) {
  return (v: unknown): HostPort | null => {
    if (v === undefined) return fallback;
    const s = text(v, "HOST:PORT such as 127.0.0.1:9091 or [::1]:9091");
    const m = /^(.*):([0-9]{1,5})$/.exec(s);
    if (!m) bad(`must be HOST:PORT such as 127.0.0.1:9091 or [::1]:9091, not ${shown(s)}`);
    const rawHost = m[1]!;
    const bracketed = /^\[(.*)\]$/.exec(rawHost);
    const host = bracketed ? bracketed[1]! : rawHost;
    const isV6 = host.includes(":");
    const ok = host === "localhost" || (parseIp(host) !== null && isV6 === Boolean(bracketed));
    if (!ok) bad(`must be HOST:PORT with an IP address (IPv6 in brackets) or localhost, such as 127.0.0.1:9091 or [::1]:9091, not ${shown(s)}`);
    const port = Number(m[2]);
    if (port < 1 || port > 65535) bad(`the port must be from 1 to 65535, not ${port}`);
    return { host, port };
  };
}

function httpUrl(v: unknown, example: string): URL {
  const s = text(v, `a URL such as ${example}`);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    bad(`must be an absolute URL such as ${example}, not ${shown(s)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") bad(`must be an http:// or https:// URL such as ${example}, not ${shown(s)}`);
  if (url.username || url.password) bad("must not contain a user name or password");
  return url;
}

const HOST_ENTRY = /^(?:\[[0-9a-f:.]+\]|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?::[0-9]{1,5})?$/;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;
const CSRF_COOKIE = "otpgate_csrf";

const V = {
  listen: hostPort({ host: "127.0.0.1", port: 9091 }),
  metricsListen: hostPort(null),
  keysFile: absolutePath("/var/lib/otpgate/gateway.keys"),
  sessionsFile: absolutePath(),
  idle: durationIn(1000, 30 * 86_400_000, 30 * 60_000),
  absolute: durationIn(1000, 400 * 86_400_000, 12 * 3_600_000),
  headTimeout: durationIn(1000, 300_000, 30_000),
  publicUrl: (v: unknown): URL => {
    if (v === undefined) bad("is required: the URL users reach the gateway at, such as https://app.example.com");
    return httpUrl(v, "https://app.example.com");
  },
  upstream: (v: unknown): URL | null => {
    if (v === undefined) return null;
    const url = httpUrl(v, "http://127.0.0.1:8787");
    if (url.protocol !== "http:") bad("must be an http:// URL (the gateway and the app talk on loopback or a private network)");
    if (url.pathname !== "/" || url.search || url.hash) bad(`only the scheme, host and port are used; write ${url.origin} (the app receives the request's own path)`);
    return url;
  },
  pagesPrefix: (v: unknown): string => {
    if (v === undefined) return "/_otpgate";
    const p = text(v, "one path segment such as /_otpgate");
    if (!/^\/[A-Za-z0-9._~-]+$/.test(p) || p === "/." || p === "/..") bad(`must be one path segment such as /_otpgate, not ${shown(p)}`);
    return p;
  },
  allowedHost: (v: unknown): string => {
    const h = text(v, "a host name such as app.example.com").toLowerCase();
    if (!HOST_ENTRY.test(h)) bad(`must be a host name such as app.example.com or app.example.com:8443 (no scheme, path or wildcard), not ${shown(v)}`);
    return h;
  },
  tlsFile:
    (what: string) =>
    (v: unknown): string => {
      if (v === undefined) bad(`is required: the ${what} (PEM file)`);
      const p = absolutePath()(v);
      try {
        readFileSync(p);
      } catch (err) {
        bad(`cannot read the TLS file ${p} (${(err as NodeJS.ErrnoException).code ?? "error"}); give the ${what} (PEM)`);
      }
      return p;
    },
  stateFiles: (v: unknown): string => {
    if (v === undefined) return "~/.google_authenticator";
    const spec = text(v, "a path pattern such as ~/.google_authenticator");
    if (!/~|\$\{HOME\}|\$\{USER\}/.test(spec))
      bad(`must contain ~, \${HOME} or \${USER} so that each user has their own file, such as ~/.google_authenticator or /var/lib/otpgate/\${USER}, not ${shown(spec)}`);
    try {
      expandSecretPath(spec, { name: "alice", home: "/home/alice" });
    } catch (err) {
      bad((err as Error).message);
    }
    return spec;
  },
  runAs: (v: unknown): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) return String(v);
    const name = typeof v === "number" ? String(v) : text(v, "a user name or uid, such as otpgate-gw");
    if (name === "root" || /^-?0+$/.test(name)) bad("must not be root: the gateway drops to this user after binding its port (create one: useradd --system --no-create-home otpgate-gw)");
    const problem = userNameProblem(name);
    if (problem !== null || /[\s:]/.test(name)) bad(`is not a user name or uid (${problem ?? "contains white space or ':'"})`);
    return name;
  },
  cookieName: (v: unknown): string => {
    if (v === undefined) return "otpgate_session";
    const name = text(v, "a cookie name such as otpgate_session");
    if (!COOKIE_NAME.test(name)) bad(`must be 1 to 64 letters, digits or !#$%&'*+-.^_\`|~ (a cookie name), not ${shown(name)}`);
    if (/^__(host|secure)-/i.test(name))
      bad(`must not start with __Host- or __Secure-: the gateway adds the __Host- prefix itself when public_url is https; write ${name.replace(/^__(host|secure)-/i, "")}`);
    if (name === CSRF_COOKIE) bad(`${CSRF_COOKIE} is the gateway's CSRF cookie; choose another name`);
    return name;
  },
  issuer: (v: unknown): string => {
    if (v === undefined) return hostname() || "otpgate";
    const s = text(v, "a name such as example.com");
    if (s.length > 64) bad("must be at most 64 characters (authenticator apps show it)");
    if (s.includes(":")) bad('must not contain ":" (authenticator apps split the account label at it)');
    return s;
  },
  store: (v: unknown): string | null => {
    if (v === undefined || v === null) return null;
    const url = text(v, "a postgres://USER@HOST:PORT/DATABASE URL");
    if (!/^postgres(ql)?:\/\//.test(url)) bad(`must be a postgres://USER@HOST:PORT/DATABASE URL (the fleet database), not ${shown(url.replace(/:[^/@:]*@/, ":***@"))}`);
    if (/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(url)) bad("must not carry the password (the configuration is not the place for it): put it in store_password_file");
    const problem = fleetUrlProblem(url);
    if (problem !== null) bad(problem);
    try {
      new URL(url);
    } catch {
      bad("is not a URL such as postgres://otpgate@db.example.com:5432/otpgate?sslmode=verify-full");
    }
    const target = storeTarget(url);
    if (!target.local && target.sslmode !== null && PLAIN_SSLMODES.has(target.sslmode)) {
      bad(
        `sslmode=${target.sslmode} to ${target.host}, which is not this host: the revocations and bans would cross the network unencrypted or with an unchecked server; anyone on the path could hide a logout from the other instances or ban every client. Write sslmode=verify-full&sslrootcert=CA (the CA of the database's certificate), or reach the database on this host (127.0.0.1 or its unix socket)`,
      );
    }
    return url;
  },
  trustedProxy: (v: unknown): IpRange => {
    const r = parseProxyEntry(text(v, "an IP address or CIDR range such as 10.0.0.0/8"));
    return typeof r === "string" ? bad(r) : r;
  },
};

// ---------------------------------------------------------------------------------------------
// Structure. zod checks every level strictly and collects every problem with its path.

function check<T>(fn: (v: unknown) => T) {
  return z
    .unknown()
    .optional()
    .transform((v, ctx): T => {
      try {
        return fn(v);
      } catch (err) {
        if (!(err instanceof Bad)) throw err;
        ctx.issues.push({ code: "custom", message: err.message, input: v });
        return z.NEVER;
      }
    });
}

function list<T>(item: (v: unknown) => T, what: string) {
  return z.array(check(item), { error: `must be a list such as [${what}] (YAML "[a, b]" or "- a" lines)` });
}

const SECTION = "must be a mapping (key: value lines indented under it)";

const sessionSchema = z.strictObject({ idle: check(V.idle), absolute: check(V.absolute), recheck: check(durationIn(1000, 3_600_000, 60_000)) }, { error: SECTION });
const regulationSchema = z.strictObject(
  {
    max_retries: check(wholeIn(1, 100, 5)),
    find_time: check(durationIn(1000, 86_400_000, 2 * 60_000)),
    ban_time: check(durationIn(1000, 7 * 86_400_000, 5 * 60_000)),
    user_delay_max: check(userDelayMax),
    max_entries: check(wholeIn(1000, 10_000_000, 100_000)),
  },
  { error: SECTION },
);
const limitsSchema = z.strictObject(
  {
    first_byte_timeout: check(durationIn(1000, 300_000, 10_000)),
    head_timeout: check(V.headTimeout),
    body_timeout: check(durationIn(1000, 600_000, 30_000)),
    keep_alive_timeout: check(durationIn(1000, 3_600_000, 5 * 60_000)),
    connections_per_address: check(wholeIn(1, 10_000, 64)),
    max_headers: check(wholeIn(10, 1000, 100)),
    app_requests_per_user: check(wholeIn(1, 10_000, 64)),
    app_body_idle_timeout: check(durationIn(1000, 600_000, 30_000)),
    tunnels_per_user: check(wholeIn(1, 10_000, 32)),
    max_connections: check(wholeIn(16, 1_000_000, 8192)),
    app_connections: check(wholeIn(16, 1_000_000, 4096)),
    app_pools: check(wholeIn(16, 1_000_000, 1024)),
  },
  { error: SECTION },
);
const tlsSchema = z.strictObject({ cert: check(V.tlsFile("certificate chain")), key: check(V.tlsFile("private key")) }, { error: SECTION });

const rootSchema = z.strictObject({
  listen: check(V.listen),
  public_url: check(V.publicUrl),
  upstream: check(V.upstream),
  pages_prefix: check(V.pagesPrefix),
  allowed_hosts: list(V.allowedHost, "app.example.com").optional(),
  tls: tlsSchema.optional(),
  state_files: check(V.stateFiles),
  keys_file: check(V.keysFile),
  sessions_file: check(V.sessionsFile).optional(),
  session: sessionSchema,
  regulation: regulationSchema,
  limits: limitsSchema,
  head_timeout: check(V.headTimeout).optional(),
  forward_auth: check(oneOf<"status" | "redirect">({ status: "nginx auth_request: 200 or 401", redirect: "Traefik, Caddy: a redirect to the login page" }, "status")),
  cookie_name: check(V.cookieName),
  password_file: check(absolutePath()).optional(),
  invites_dir: check(absolutePath("/var/lib/otpgate/invites")),
  issuer: check(V.issuer),
  trusted_proxies: list(V.trustedProxy, "10.0.0.0/8, 192.0.2.7").optional(),
  metrics_listen: check(V.metricsListen),
  user_lookup_timeout: check(durationIn(100, 60_000, 5_000)),
  decision_socket: check(absolutePath()).optional(),
  user: check(V.runAs),
  store: check(V.store),
  store_password_file: check(absolutePath()).optional(),
});

/** Keys that used to exist: using one is an error that says what to do instead. */
const REMOVED: Record<string, string> = {
  proxy_engine: "remove this line: the gateway now has one proxy engine (undici), which decides all framing sent to the app",
};

/** The mappings by path, for "did you mean". */
const SECTIONS: Record<string, readonly string[]> = {
  "": Object.keys(rootSchema.shape),
  session: Object.keys(sessionSchema.shape),
  regulation: Object.keys(regulationSchema.shape),
  limits: Object.keys(limitsSchema.shape),
  tls: Object.keys(tlsSchema.shape),
};

/** Every key the configuration accepts, by section ("" is the top level): the README's table lists them all. */
export function gatewayConfigKeys(): Readonly<Record<string, readonly string[]>> {
  return SECTIONS;
}

/** Optimal string alignment distance (a swap of two neighbours counts 1: idel -> idle). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key an unknown one was probably meant to be: a close spelling here, or the same key in another section. */
export function didYouMean(section: string, key: string): string | null {
  const known = SECTIONS[section] ?? [];
  const squash = (s: string) => s.toLowerCase().replace(/[-_\s]/g, "");
  const same = known.find((k) => squash(k) === squash(key));
  if (same) return same;
  let best: string | null = null;
  let bestDistance = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  for (const k of known) {
    const dist = distance(key.toLowerCase(), k);
    if (dist <= bestDistance && (best === null || dist < bestDistance)) {
      best = k;
      bestDistance = dist;
    }
  }
  if (best) return best;
  for (const [other, keys] of Object.entries(SECTIONS)) {
    if (other === section) continue;
    const k = keys.find((x) => squash(x) === squash(key));
    if (k) return other ? `${other}.${k}` : `${k} (at the top level)`;
  }
  return null;
}

function pathText(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) out += typeof seg === "number" ? `[${seg}]` : `${out ? "." : ""}${String(seg)}`;
  return out;
}

function problemsOf(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = pathText(issue.path);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const hint = didYouMean(path, key);
        // A key is shown as written unless it could forge another line or hide in the output.
        const shownKey = /^[\w.-]{1,64}$/.test(key) ? key : JSON.stringify(key.slice(0, 64));
        out.push({ path: path ? `${path}.${shownKey}` : shownKey, message: `unknown key${hint ? ` (did you mean ${hint}?)` : ""}` });
      }
    } else out.push({ path, message: issue.message });
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The configuration from YAML text; throws GatewayConfigError listing every problem (YAML syntax, keys, values). */
export function parseGatewayConfig(yamlText: string, source = "config"): GatewayConfig {
  const doc = parseDocument(yamlText, { uniqueKeys: true });
  if (doc.errors.length) {
    throw new GatewayConfigError(
      source,
      doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "",
        message: `not valid YAML: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`,
      })),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new GatewayConfigError(source, [{ path: "", message: `not valid YAML: ${(err as Error).message.split("\n")[0]}` }]);
  }
  if (!isMapping(raw)) throw new GatewayConfigError(source, [{ path: "", message: "must be a YAML mapping (key: value lines), such as public_url: https://app.example.com" }]);

  const problems: ConfigProblem[] = [];
  const input: Record<string, unknown> = { ...raw };
  for (const [key, why] of Object.entries(REMOVED)) {
    if (Object.hasOwn(input, key)) {
      problems.push({ path: key, message: why });
      delete input[key];
    }
  }
  // Sections may be left out (their defaults apply); "session:" with nothing under it is an error.
  for (const key of ["session", "regulation", "limits"]) if (input[key] === undefined) input[key] = {};
  const parsed = rootSchema.safeParse(input);
  if (!parsed.success) problems.push(...problemsOf(parsed.error.issues));

  // Checks across keys, on the raw values (so they are reported together with everything else).
  const get = <T>(fn: (v: unknown) => T, v: unknown): T | undefined => {
    try {
      return fn(v);
    } catch {
      return undefined;
    }
  };
  const limitsRaw = isMapping(raw.limits) ? raw.limits : {};
  if (raw.head_timeout !== undefined && limitsRaw.head_timeout !== undefined) {
    problems.push({ path: "head_timeout", message: "is also set as limits.head_timeout; keep only limits.head_timeout (head_timeout is its old spelling)" });
  }
  const sessionRaw = isMapping(raw.session) ? raw.session : {};
  const idle = get(V.idle, sessionRaw.idle);
  const absolute = get(V.absolute, sessionRaw.absolute);
  if (idle !== undefined && absolute !== undefined && idle > absolute) {
    problems.push({ path: "session.idle", message: `must not be longer than session.absolute (${formatDuration(absolute)}), not ${formatDuration(idle)}` });
  }
  const listen = get(V.listen, raw.listen);
  const metrics = get(V.metricsListen, raw.metrics_listen);
  if (listen && metrics && listen.port === metrics.port && (listen.host === metrics.host || [listen.host, metrics.host].some((h) => h === "0.0.0.0" || h === "::"))) {
    problems.push({ path: "metrics_listen", message: `must be another address than listen (${raw.listen === undefined ? "127.0.0.1:9091" : String(raw.listen)}): metrics get their own listener` });
  }
  const keysFile = get(V.keysFile, raw.keys_file);
  const sessionsFile = raw.sessions_file === undefined ? (keysFile ? join(dirname(keysFile), "gateway.sessions") : undefined) : get(V.sessionsFile, raw.sessions_file);
  const passwordFile = raw.password_file === undefined ? undefined : get(absolutePath(), raw.password_file);
  const invitesDir = get(absolutePath("/var/lib/otpgate/invites"), raw.invites_dir);
  const storePasswordFile = raw.store_password_file === undefined ? undefined : get(absolutePath(), raw.store_password_file);
  problems.push(...sameFileProblems({ keys_file: keysFile, sessions_file: sessionsFile, password_file: passwordFile, invites_dir: invitesDir, store_password_file: storePasswordFile }, (p) => p));
  if (raw.store_password_file !== undefined && (raw.store === undefined || raw.store === null)) {
    problems.push({ path: "store_password_file", message: "goes with store: postgres://USER@HOST:PORT/DATABASE (the shared state of several gateways); remove it or add store" });
  }
  if (raw.sessions_file !== undefined && raw.store !== undefined && raw.store !== null) {
    problems.push({ path: "sessions_file", message: "is not used with store: (revocations and bans are kept in the database); remove sessions_file, or remove store to keep them in the file" });
  }
  if (raw.user !== undefined && raw.user !== null && raw.decision_socket === undefined) {
    problems.push({ path: "user", message: "needs decision_socket (e.g. /run/otpgate/server.sock): as its own user the gateway cannot read the users' state files, otpgate server decides for it" });
  }

  if (problems.length || !parsed.success) {
    // In the order of the file's top-level keys (a problem's own order kept within a key).
    const order = Object.keys(raw);
    const rank = (p: ConfigProblem) => {
      const i = order.indexOf(/^[^.[]*/.exec(p.path)![0]);
      return i < 0 ? order.length : i;
    };
    throw new GatewayConfigError(
      source,
      problems
        .map((p, i) => ({ p, i }))
        .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
        .map(({ p }) => p),
    );
  }
  const c = parsed.data;
  const publicUrl = c.public_url;
  const headMs = c.head_timeout ?? c.limits.head_timeout;
  return {
    listen: c.listen!,
    publicUrl,
    upstream: c.upstream,
    pagesPrefix: c.pages_prefix,
    allowedHosts: c.allowed_hosts ?? [publicUrl.host.toLowerCase()],
    tls: c.tls ?? null,
    stateFiles: c.state_files,
    keysFile: c.keys_file,
    session: { idleMs: c.session.idle, absoluteMs: c.session.absolute, recheckMs: c.session.recheck },
    regulation: {
      maxRetries: c.regulation.max_retries,
      findTimeMs: c.regulation.find_time,
      banTimeMs: c.regulation.ban_time,
      userDelayMaxMs: c.regulation.user_delay_max,
      maxEntries: c.regulation.max_entries,
    },
    forwardAuth: c.forward_auth,
    cookieName: c.cookie_name,
    passwordFile: c.password_file ?? null,
    invitesDir: c.invites_dir,
    issuer: c.issuer,
    proxyEngine: "node",
    headTimeoutMs: headMs,
    trustedProxies: { ranges: c.trusted_proxies ?? [] },
    metricsListen: c.metrics_listen,
    limits: {
      firstByteMs: c.limits.first_byte_timeout,
      headMs,
      bodyMs: c.limits.body_timeout,
      keepAliveMs: c.limits.keep_alive_timeout,
      connectionsPerAddress: c.limits.connections_per_address,
      maxHeaders: c.limits.max_headers,
      appRequestsPerUser: c.limits.app_requests_per_user,
      appBodyIdleMs: c.limits.app_body_idle_timeout,
      tunnelsPerUser: c.limits.tunnels_per_user,
      maxConnections: c.limits.max_connections,
      appConnections: c.limits.app_connections,
      appPools: c.limits.app_pools,
    },
    sessionsFile: sessionsFile!,
    userLookupTimeoutMs: c.user_lookup_timeout,
    decisionSocket: c.decision_socket ?? null,
    runAs: c.user,
    store: c.store,
    storePasswordFile: c.store_password_file ?? null,
  };
}

export function loadGatewayConfig(path: string): GatewayConfig {
  let yamlText: string;
  try {
    yamlText = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code})`);
  }
  return parseGatewayConfig(yamlText, path);
}

type FileKey = "keys_file" | "sessions_file" | "password_file" | "invites_dir" | "store_password_file";
const FILE_KEYS: readonly FileKey[] = ["keys_file", "sessions_file", "password_file", "invites_dir", "store_password_file"];

/** Each of the gateway's files must be a file of its own: compared as `canonical` spells them. */
function sameFileProblems(files: Partial<Record<FileKey, string | undefined>>, canonical: (p: string) => string, how = ""): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen: [FileKey, string, string][] = [];
  for (const key of FILE_KEYS) {
    const given = files[key];
    if (given === undefined) continue;
    const c = canonical(given);
    const first = seen.find(([, , other]) => other === c);
    if (first) problems.push({ path: key, message: `must be another file than ${first[0]} (${first[1]})${how}` });
    else seen.push([key, given, c]);
  }
  return problems;
}

/** A path with every existing directory on the way resolved (symbolic links followed); the rest as given. */
function realLocation(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realLocation(parent), basename(path));
  }
}

/**
 * Where the gateway keeps its files, checked at the start and by --check-config: every directory on
 * the way to keys_file, sessions_file, password_file and invites_dir (and each of them that exists)
 * must belong to root or the gateway's user (`uid`) and be writable by nobody else; otherwise
 * whoever controls a directory can delete the sessions file (logged-out sessions would come back)
 * or replace the keys. And no two of them may be one file through a symbolic link.
 */
export function gatewayFileProblems(
  config: Pick<GatewayConfig, "keysFile" | "sessionsFile" | "passwordFile" | "invitesDir"> & { readonly decisionSocket?: string | null; readonly storePasswordFile?: string | null },
  uid: number,
): ConfigProblem[] {
  // With decision_socket the gateway never touches invites_dir (otpgate server reads it as root).
  const invites = config.decisionSocket ? undefined : config.invitesDir;
  const files: Record<FileKey, string | undefined> = {
    keys_file: config.keysFile,
    sessions_file: config.sessionsFile,
    password_file: config.passwordFile ?? undefined,
    invites_dir: invites,
    store_password_file: config.storePasswordFile ?? undefined,
  };
  const problems: ConfigProblem[] = [];
  const owners = uid === 0 ? [0] : [0, uid];
  for (const key of FILE_KEYS) {
    const path = files[key];
    if (path === undefined) continue;
    for (const p of stateLocationProblems(path, { owners })) {
      problems.push({ path: key, message: `${path}: ${p.path} is ${p.reason} (another user could delete or replace the gateway's files there); ${p.fix}` });
    }
  }
  problems.push(
    ...sameFileProblems(files, realLocation, " through a symbolic link").map((p) => ({
      ...p,
      message: p.message.replace(/^must be another file than (\S+) \((.*)\) through a symbolic link$/, "is $1 ($2) through a symbolic link: give each its own file"),
    })),
  );
  return problems;
}

/** Throws GatewayConfigError with every problem of gatewayFileProblems (the start and --check-config). */
export function checkGatewayFiles(config: GatewayConfig, source: string, uid = process.geteuid?.() ?? 0): void {
  const problems = gatewayFileProblems(config, uid);
  if (problems.length) throw new GatewayConfigError(source, problems);
}

const LOOPBACK = [parseProxyEntry("127.0.0.0/8"), parseProxyEntry("::1")].filter((r): r is IpRange => typeof r !== "string");

function rangesMeet(a: IpRange, b: IpRange): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  for (let bit = 0; bit < prefix; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((a.bytes[byte]! & mask) !== (b.bytes[byte]! & mask)) return false;
  }
  return true;
}

/** Where store: connects: the host (or socket directory), whether that is this host, and sslmode as written (null: none). */
export function storeTarget(url: string): { readonly host: string; readonly local: boolean; readonly sslmode: string | null } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { host: "", local: false, sslmode: null };
  }
  const host = parsed.searchParams.get("host") ?? decodeURIComponent(parsed.hostname);
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  const hosts = bare.split(",");
  const local = hosts.every((h) => {
    if (h === "" || h.startsWith("/") || h === "localhost") return true;
    const r = parseProxyEntry(h);
    return typeof r !== "string" && LOOPBACK.some((l) => r.prefix >= l.prefix && rangesMeet(l, r));
  });
  const sslmode = parsed.searchParams.get("sslmode");
  return { host: host === "" ? "the default unix socket" : host, local, sslmode: sslmode === null ? null : sslmode.trim().toLowerCase() };
}

/** sslmodes that send the shared state unencrypted or to an unchecked server (pg's no-verify included). */
const PLAIN_SSLMODES = new Set(["disable", "allow", "prefer", "no-verify"]);

/** A fixed block ("address/prefix", IPv4 or IPv6), without the checks trusted_proxies entries get. */
function block(text: string): IpRange {
  const [addr, len] = text.split("/") as [string, string];
  const bytes = parseIp(addr)!;
  return { text, bytes, prefix: Number(len) + (addr.includes(":") ? 0 : 96) };
}

/** Not public: private, shared, loopback, link-local, documentation, benchmarking, multicast and reserved IPv4 blocks. */
const NOT_PUBLIC_V4 = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/3",
].map(block);
/** Public IPv6 (global unicast). */
const PUBLIC_V6 = block("2000::/3");
/** Every IPv4 address, as IPv4-mapped IPv6. */
const ALL_V4 = block("::ffff:0.0.0.0/96");
/** More public addresses than this in trusted_proxies get a warning: a /16 of IPv4, a /48 of IPv6. */
const PUBLIC_V4_WARN = 65_536n;
const PUBLIC_V6_WARN = 2n ** 80n;

const within = (inner: IpRange, outer: IpRange) => inner.prefix >= outer.prefix && rangesMeet(inner, outer);
const sizeOf = (r: IpRange) => 2n ** BigInt(128 - r.prefix);

/** How many public addresses the ranges hold together (overlaps counted once), IPv4 and IPv6 apart, and the ranges that hold them. */
function publicSpace(ranges: readonly IpRange[]): { readonly v4: bigint; readonly v6: bigint; readonly v4Ranges: string[]; readonly v6Ranges: string[] } {
  const isV4 = (r: IpRange) => within(r, ALL_V4);
  // A range inside another listed range adds nothing.
  const outer = ranges.filter((r, i) => !ranges.some((o, j) => j !== i && within(r, o) && (o.prefix < r.prefix || j < i)));
  const out = { v4: 0n, v6: 0n, v4Ranges: [] as string[], v6Ranges: [] as string[] };
  for (const r of outer) {
    if (isV4(r)) {
      if (NOT_PUBLIC_V4.some((n) => within(r, n))) continue;
      const pub = sizeOf(r) - NOT_PUBLIC_V4.filter((n) => within(n, r)).reduce((a, n) => a + sizeOf(n), 0n);
      if (pub > 0n) {
        out.v4 += pub;
        out.v4Ranges.push(r.text);
      }
    } else if (within(r, PUBLIC_V6)) {
      out.v6 += sizeOf(r);
      out.v6Ranges.push(r.text);
    }
  }
  return out;
}

function powerOfTwo(n: bigint): string {
  const bits = n.toString(2).length - 1;
  return `${n === 2n ** BigInt(bits) ? "" : "about "}2^${bits}`;
}

/** Things that are allowed but probably not meant (--check-config prints them as warnings). */
export function gatewayConfigWarnings(config: Pick<GatewayConfig, "listen" | "trustedProxies"> & Partial<Pick<GatewayConfig, "metricsListen" | "store" | "limits">>): string[] {
  const warnings: string[] = config.limits ? limitWarnings(config.limits) : [];
  const space = publicSpace(config.trustedProxies.ranges);
  const choose =
    "any client there can choose the address the gateway counts (and bans) its sign-ins under with X-Forwarded-For. List only your proxies' own addresses (a cloud load balancer: the narrowest ranges its provider publishes for it)";
  if (space.v4 > PUBLIC_V4_WARN) warnings.push(`trusted_proxies: the listed ranges hold ${space.v4} public IPv4 address(es) (${space.v4Ranges.join(", ")}): ${choose}`);
  if (space.v6 > PUBLIC_V6_WARN) warnings.push(`trusted_proxies: the listed ranges hold public IPv6 space of ${powerOfTwo(space.v6)} address(es) (${space.v6Ranges.join(", ")}): ${choose}`);
  if (config.metricsListen && !isLoopbackHost(config.metricsListen.host)) {
    const m = config.metricsListen;
    warnings.push(
      `metrics_listen: ${m.host.includes(":") ? `[${m.host}]` : m.host}:${m.port} is not a loopback address: anyone who can reach it reads the gateway's counters (sign-ins, failures, bans). Use 127.0.0.1:PORT and let the metrics collector reach it there, or firewall the port`,
    );
  }
  if (config.store) {
    const t = storeTarget(config.store);
    if (!t.local && t.sslmode === null) {
      warnings.push(
        `store: no sslmode for ${t.host}, which is not this host: without sslmode (or PGSSLMODE) the connection is not encrypted; write sslmode=verify-full&sslrootcert=CA, or anyone on the path can hide logouts from the other instances and ban every client`,
      );
    } else if (!t.local && t.sslmode !== "verify-full") {
      warnings.push(`store: sslmode=${t.sslmode} to ${t.host}: the connection is encrypted but the server's name is not checked; write sslmode=verify-full&sslrootcert=CA`);
    }
  }
  return [...warnings, ...loopbackProxyWarnings(config)];
}

/** The packaged unit's LimitNOFILE (packaging/systemd/otpgate-gateway.service). */
const UNIT_NOFILE = 16_384;

/** Limits that cancel each other (red team RT-C F5): each still starts, but one client or user can take everything. */
function limitWarnings(l: GatewayConfig["limits"]): string[] {
  const w: string[] = [];
  if (l.maxConnections <= l.connectionsPerAddress) {
    w.push(
      `limits: max_connections (${l.maxConnections}) is not above connections_per_address (${l.connectionsPerAddress}): one client address can take every connection. Keep connections_per_address a small share of max_connections (the defaults are 64 and 8192)`,
    );
  }
  const perUser = l.appRequestsPerUser + l.tunnelsPerUser;
  if (l.appConnections < perUser) {
    w.push(
      `limits: app_connections (${l.appConnections}) is below app_requests_per_user + tunnels_per_user (${l.appRequestsPerUser} + ${l.tunnelsPerUser} = ${perUser}): one user can take every app connection. Raise app_connections or lower the per-user limits (the defaults are 4096, 64 and 32)`,
    );
  }
  const files = l.maxConnections + l.appConnections;
  if (files > UNIT_NOFILE) {
    w.push(
      `limits: max_connections + app_connections (${l.maxConnections} + ${l.appConnections} = ${files}) exceed the packaged unit's LimitNOFILE=${UNIT_NOFILE}: the gateway runs out of file descriptors (EMFILE, every client refused) before either cap is reached. Lower them, or raise LimitNOFILE in a drop-in (systemctl edit otpgate-gateway) well above their sum`,
    );
  }
  return w;
}

function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const r = parseProxyEntry(host);
  return typeof r !== "string" && LOOPBACK.some((l) => within(r, l));
}

/** Loopback trusted proxies (only those entirely loopback; wider ranges are refused) when the listener takes loopback connections. */
function loopbackProxyWarnings(config: Pick<GatewayConfig, "listen" | "trustedProxies">): string[] {
  const host = config.listen.host;
  const wildcard = host === "0.0.0.0" || host === "::";
  const listenRange = parseProxyEntry(host);
  const takesLoopback = wildcard || (typeof listenRange !== "string" && LOOPBACK.some((l) => rangesMeet(l, listenRange)));
  if (!takesLoopback) return [];
  const listen = host.includes(":") ? `[${host}]:${config.listen.port}` : `${host}:${config.listen.port}`;
  return config.trustedProxies.ranges
    .filter((r) => LOOPBACK.some((l) => within(r, l)))
    .map(
      (r) =>
        `trusted_proxies: ${r.text} is a loopback address and the gateway listens on ${listen}: any local user can connect from it and choose the address the gateway counts (and bans) their sign-ins under with X-Forwarded-For. Fine when no untrusted user can log in to this host; otherwise let only the proxy reach the gateway (a firewall rule by owner, e.g. iptables -A OUTPUT -o lo -p tcp --dport ${config.listen.port} -m owner ! --uid-owner www-data -j REJECT)`,
    );
}
