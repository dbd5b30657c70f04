// The gateway app in-process (no root, no sockets), the way hono tests an app with app.request:
// build it with fakes, send it a request, read status, headers and text.

import { Duplex } from "node:stream";
import { Regulator } from "../../src/core/web/index.js";
import { createGatewayApp, type GatewayApp } from "../../src/adapters/http/gateway-app.js";
import { parseGatewayConfig, type GatewayConfig } from "../../src/adapters/http/gateway-config.js";
import type { GatewayRequest, GatewayResponse, HeaderList, Upstream, UpstreamRequest, UpstreamUpgrade } from "../../src/adapters/http/gateway-types.js";
import { createSessionService, type Sessions } from "../../src/adapters/http/sessions.js";
import { Keyring } from "../../src/platform/keyring.js";
import { gatewayCookies } from "../../src/adapters/http/cookie-names.js";
import { MemorySessionsStore } from "../../src/stores/gateway-sessions.js";
import type { UserDirectory } from "../../src/adapters/http/user-directory.js";
import { localDecisions } from "../../src/adapters/http/local-decisions.js";
import type { DecisionService } from "../../src/ports/decision-service.js";
import type { AccountStore } from "../../src/ports/index.js";

export interface AppReply {
  readonly status: number;
  readonly headers: HeaderList;
  readonly text: string;
  header(name: string): string | undefined;
  all(name: string): string[];
}

export interface AppRequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string> | HeaderList;
  /** A string, or the chunks of a body (sent as they come). */
  readonly body?: string | AsyncIterable<Uint8Array>;
  readonly remoteAddress?: string;
}

async function text(body: GatewayResponse["body"]): Promise<string> {
  if (body === null) return "";
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString("utf8");
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString("utf8");
}

export async function appRequest(app: GatewayApp, target: string, options: AppRequestOptions = {}): Promise<AppReply> {
  const list: [string, string][] = Array.isArray(options.headers) ? options.headers.map(([n, v]) => [n.toLowerCase(), v]) : Object.entries(options.headers ?? {}).map(([n, v]) => [n.toLowerCase(), v]);
  if (!list.some(([n]) => n === "host")) list.unshift(["host", "app.test"]);
  let body: AsyncIterable<Uint8Array> | null = null;
  if (typeof options.body === "string") {
    const bytes = Buffer.from(options.body);
    if (!list.some(([n]) => n === "content-length" || n === "transfer-encoding")) list.push(["content-length", String(bytes.length)]);
    body = (async function* () {
      yield bytes;
    })();
  } else if (options.body) body = options.body;
  const req: GatewayRequest = { method: options.method ?? "GET", target, headers: list, remoteAddress: options.remoteAddress ?? "192.0.2.10", body };
  const res = await app.handle(req);
  const all = (name: string) => res.headers.filter(([n]) => n === name).map(([, v]) => v);
  return { status: res.status, headers: res.headers, text: await text(res.body), header: (name) => all(name)[0], all };
}

/** An Upstream that records what it was given and answers with `reply` (or fails). */
export interface FakeUpstream extends Upstream {
  readonly seen: { req: UpstreamRequest; body: string }[];
  readonly upgrades: { target: string; headers: HeaderList; socket: FakeSocket }[];
  reply: (req: UpstreamRequest) => GatewayResponse | Error;
  upgradeReply: (req: { target: string; headers: HeaderList }) => HeaderList | Error;
}

export class FakeSocket extends Duplex {
  written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.written.push(chunk);
    cb();
  }
}

export function fakeUpstream(): FakeUpstream {
  const up: FakeUpstream = {
    seen: [],
    upgrades: [],
    reply: (req) => ({ status: 200, headers: [["content-type", "text/plain"]], body: `app saw ${req.method} ${req.target}` }),
    upgradeReply: () => new Error("no upgrade"),
    async forward(req) {
      let body = "";
      if (req.body) for await (const c of req.body) body += Buffer.from(c).toString("latin1");
      up.seen.push({ req, body });
      const r = up.reply(req);
      if (r instanceof Error) throw r;
      return r;
    },
    async upgrade(req): Promise<UpstreamUpgrade> {
      const socket = new FakeSocket();
      up.upgrades.push({ target: req.target, headers: req.headers, socket });
      const r = up.upgradeReply(req);
      if (r instanceof Error) throw r;
      return { headers: r, socket };
    },
  };
  return up;
}

export interface TestApp {
  readonly app: GatewayApp;
  readonly config: GatewayConfig;
  readonly sessions: Sessions;
  readonly upstream: FakeUpstream;
  readonly clock: { now: number; nowMs(): number };
  readonly logs: Record<string, string | number | boolean>[];
  /** The users' secret lines as the session checks read them (default "SECRET-<user>"; null: no state file). */
  readonly secrets: Map<string, string | null>;
  readonly regulator: Regulator;
  /** A session cookie header value for `user`, issued now (bound to the user's secret in `secrets`). */
  signIn(user: string): { cookie: string; sid: string };
}

/** A user directory of the given accounts (name -> state-file store); every other name is unknown. */
export function fakeDirectory(accounts: Record<string, AccountStore> = {}): UserDirectory & { readonly lookups: string[] } {
  const lookups: string[] = [];
  return {
    lookups,
    async find(name) {
      lookups.push(name);
      return Object.hasOwn(accounts, name) ? { kind: "found", account: { name, uid: 1000, gid: 1000, home: `/home/${name}`, groups: [1000] } } : { kind: "unknown" };
    },
    storeOf: (account) => accounts[account.name]!,
  };
}

/** The app with a fixed clock, counting randomness, fresh keys and a fake upstream; `yaml` adds configuration. */
export interface TestAppOverrides {
  readonly limits?: Partial<GatewayConfig["limits"]>;
  readonly session?: Partial<GatewayConfig["session"]>;
  /** The user directory (default: fakeDirectory(), where nobody exists). */
  readonly users?: UserDirectory;
  /** The decision service (default: localDecisions() over `users`). */
  readonly decisions?: DecisionService;
  /** Wrap the session service (e.g. to make it fail). */
  readonly sessions?: (real: Sessions) => Sessions;
  /** Sees every log event before it is recorded (and may throw). */
  readonly log?: (event: Record<string, string | number | boolean>) => void;
  /** The machine's clock and real waits instead of the fixed clock that waits move forward. */
  readonly realTime?: boolean;
}

export function testApp(yaml: Record<string, unknown> = {}, override: TestAppOverrides = {}): TestApp {
  const lines = ["upstream: http://127.0.0.1:9", "keys_file: /nonexistent/gateway.keys"];
  if (!("public_url" in yaml)) lines.unshift("public_url: http://app.test");
  for (const [k, v] of Object.entries(yaml)) lines.push(`${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  const parsed = parseGatewayConfig(lines.join("\n") + "\n");
  const config: GatewayConfig = { ...parsed, limits: { ...parsed.limits, ...override.limits }, session: { ...parsed.session, ...override.session } };
  const clock = { now: 1_800_000_000_000, nowMs: () => (override.realTime ? Date.now() : clock.now) };
  let counter = 0;
  const random = { bytes: (n: number) => Uint8Array.from({ length: n }, () => ++counter % 256) };
  const keyring = new Keyring({ lockSecret: Buffer.alloc(32, 3), keys: [{ kid: 1, createdAt: clock.now, material: Buffer.alloc(32, 1) }], legacy: false }, random);
  const secrets = new Map<string, string | null>();
  const secretOf = (user: string) => (secrets.has(user) ? secrets.get(user)! : `SECRET-${user}`);
  const logs: TestApp["logs"] = [];
  const log = (e: Record<string, string | number | boolean>) => {
    override.log?.(e);
    logs.push(e);
  };
  const sessions = createSessionService({ config, clock, random, log, readSecret: async (user) => secretOf(user), inMemory: { keyring, store: new MemorySessionsStore() } });
  const upstream = fakeUpstream();
  const regulator = new Regulator(config.regulation);
  const sleep = override.realTime ? (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)) : async (ms: number) => void (clock.now += ms);
  const app = createGatewayApp({
    config,
    clock,
    random,
    log,
    upstream,
    sessions: override.sessions?.(sessions) ?? sessions,
    regulator,
    decisions: override.decisions ?? localDecisions({ users: override.users ?? fakeDirectory(), stateFiles: config.stateFiles, invitesDir: config.invitesDir, clock }),
    sleep,
  });
  return {
    app,
    config,
    sessions,
    upstream,
    clock,
    logs,
    secrets,
    regulator,
    signIn(user) {
      const issued = sessions.issue(user, clock.now, sessions.fingerprint(user, secretOf(user) ?? ""));
      return { cookie: `${gatewayCookies(config).session}=${issued.cookie}`, sid: issued.session.sid };
    },
  };
}
