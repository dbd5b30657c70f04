// The gateway's sign-in in-process (issue 9, items 5, 6 and the return-URL bullet): the whole app
// (createGatewayApp) with a fake clock, memory state files and a fake user directory; no root, no
// sockets. Regulation an attacker cannot turn against the owner, user names validated before they
// become keys, lookups that never block, one refusal time for known and unknown users, and a
// session built before the code is used.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Regulator } from "../../src/core/web/index.js";
import type { GatewayResponse } from "../../src/adapters/http/gateway-types.js";
import { REFUSAL_FLOOR_MS } from "../../src/adapters/http/login-handler.js";
import type { Sessions } from "../../src/adapters/http/sessions.js";
import { createUserDirectory, type CachedAccount, type UserDirectory } from "../../src/adapters/http/user-directory.js";
import { stateFileStores } from "../../src/adapters/http/gateway-entry.js";
import { UserCache } from "../../src/platform/user-cache.js";
import type { AccountStore } from "../../src/ports/index.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { appRequest, testApp, type AppReply, type TestApp } from "../helpers/gateway-app.js";
import { codeAt, wrongCode } from "../helpers/otp.js";
import { tempDir } from "../helpers/system.js";
import { hashPassword } from "../../src/platform/password-hash.js";
import { updatePasswordFile } from "../../src/stores/password-file.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const STATE = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;
const T0 = 1_800_000_000_000;

interface Rig {
  readonly app: TestApp["app"];
  readonly regulator: Regulator;
  readonly store: MemoryAccountStore;
  readonly logs: Record<string, unknown>[];
  readonly slept: number[];
  readonly lookups: string[];
  now(): number;
  advance(ms: number): void;
  code(offsetSteps?: number): string;
  login(fields: Record<string, string>, from?: string, headers?: [string, string][]): Promise<GatewayResponse>;
}

/** The app (test/helpers/gateway-app.ts) with alice's state file in memory and a directory that knows only her. */
function rig(
  options: {
    directory?: (lookups: string[], account: CachedAccount, store: AccountStore) => UserDirectory;
    sessions?: (real: Sessions) => Sessions;
    log?: (e: Record<string, unknown>) => void;
    realTime?: boolean;
    state?: string;
    yaml?: Record<string, unknown>;
  } = {},
): Rig {
  const lookups: string[] = [];
  const store = new MemoryAccountStore(options.state ?? STATE);
  const account: CachedAccount = { name: "alice", uid: 1001, gid: 1001, home: "/home/alice", groups: [1001] };
  const users: UserDirectory = options.directory?.(lookups, account, store) ?? {
    async find(name) {
      lookups.push(name);
      return name === "alice" ? { kind: "found", account } : { kind: "unknown" };
    },
    storeOf: () => store,
  };
  const t = testApp(
    { allowed_hosts: ["app.test", "xn--bcher-kva.example"], ...options.yaml },
    { users, ...(options.sessions ? { sessions: options.sessions } : {}), ...(options.log ? { log: options.log } : {}), ...(options.realTime ? { realTime: true } : {}) },
  );
  // Every wait of the app (slow-down, refusal floor) moves the fixed clock; record them.
  const slept: number[] = [];
  let last = t.clock.now;
  const waits = () => {
    if (t.clock.now !== last) slept.push(t.clock.now - last);
    last = t.clock.now;
  };
  const form = async (): Promise<{ cookie: string; csrf: string }> => {
    const page: AppReply = await appRequest(t.app, "/_otpgate/login");
    const cookie = page
      .all("set-cookie")
      .map((c) => c.split(";")[0]!)
      .join("; ");
    return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(page.text)![1]! };
  };
  return {
    app: t.app,
    regulator: t.regulator,
    store,
    logs: t.logs,
    slept,
    lookups,
    now: () => t.clock.nowMs(),
    advance: (ms) => {
      t.clock.now += ms;
      last = t.clock.now;
    },
    code: (offset = 0) => codeAt(SECRET, Math.floor(t.clock.nowMs() / 30_000) + offset),
    async login(fields, from = "203.0.113.1", headers = []) {
      const f = await form();
      last = t.clock.now;
      const body = new URLSearchParams({ csrf: f.csrf, rd: "/", ...fields }).toString();
      const res = await t.app.handle({
        method: "POST",
        target: "/_otpgate/login",
        headers: [["host", "app.test"], ["content-type", "application/x-www-form-urlencoded"], ["content-length", String(Buffer.byteLength(body))], ["cookie", f.cookie], ...headers],
        remoteAddress: from,
        body: (async function* () {
          yield Buffer.from(body);
        })(),
      });
      waits();
      return res;
    },
  };
}

const header = (res: GatewayResponse, name: string) => res.headers.filter(([n]) => n === name).map(([, v]) => v);
const sessionSet = (res: GatewayResponse) => header(res, "set-cookie").some((c) => c.startsWith("otpgate_session=") && !c.startsWith("otpgate_session=;"));
const keysOf = (r: Regulator) => [...(r as unknown as { entries: Map<string, unknown> }).entries.keys()];

test("six wrong codes from six addresses, then the owner's right code from a seventh: accepted after a delay", async () => {
  const r = rig();
  const wrong = wrongCode(SECRET, Math.floor(T0 / 30_000) - 2, Math.floor(T0 / 30_000) + 2);
  for (let i = 1; i <= 6; i++) assert.equal((await r.login({ user: "alice", code: wrong }, `198.51.100.${i}`)).status, 401);
  r.slept.length = 0;
  const owner = await r.login({ user: "alice", code: r.code() }, "192.0.2.77");
  assert.equal(owner.status, 303, "the owner gets in");
  assert.ok(sessionSet(owner));
  assert.deepEqual(r.slept, [500], "after the per-user slow-down (6 failures: 250 ms doubled once), no lock-out");
  assert.ok(!r.logs.some((l) => l.reason === "banned"));
  // Old code: `the owner's right code from a seventh address is accepted: 401 !== 303` (user:alice banned everywhere).
});

test("X-Forwarded-For from a loopback peer is not believed: failures count against the peer, which gets banned", async () => {
  const r = rig();
  const wrong = wrongCode(SECRET, Math.floor(T0 / 30_000) - 2, Math.floor(T0 / 30_000) + 2);
  for (let i = 1; i <= 6; i++) await r.login({ user: `nosuch${i}`, code: wrong }, "127.0.0.1", [["x-forwarded-for", `203.0.113.${i}`]]);
  const seventh = await r.login({ user: "alice", code: r.code() }, "127.0.0.1", [["x-forwarded-for", "192.0.2.200"]]);
  assert.equal(seventh.status, 401, "the peer's address is banned, whatever X-Forwarded-For says");
  assert.equal(r.logs.at(-1)!.reason, "banned");
  assert.ok(
    keysOf(r.regulator).every((k) => !k.includes("203.0.113.")),
    "no key for an address the client wrote",
  );
  assert.equal((await r.login({ user: "alice", code: r.code() }, "192.0.2.200")).status, 303, "the address the attacker named is not banned");
  // Old code: `the loopback peer is banned after 12 failures; addresses seen: 203.0.113.1 … 203.0.113.99` (each XFF its own key).
});

test("nothing is counted while banned, and a ban is not extended by attempts during it", async () => {
  const r = rig();
  const wrong = wrongCode(SECRET, Math.floor(T0 / 30_000) - 2, Math.floor(T0 / 30_000) + 30);
  for (let i = 0; i < 6; i++) await r.login({ user: "alice", code: wrong }, "198.51.100.9");
  const keys = JSON.stringify([...(r.regulator as unknown as { entries: Map<string, unknown> }).entries]);
  r.advance(290_000);
  for (let i = 0; i < 10; i++) assert.equal((await r.login({ user: `u${i}`, code: wrong }, "198.51.100.9")).status, 401);
  assert.equal(JSON.stringify([...(r.regulator as unknown as { entries: Map<string, unknown> }).entries]), keys, "no counter changed during the ban");
  assert.equal(r.lookups.length, 6, "banned attempts never reach the directory");
  r.advance(10_000);
  await r.login({ user: "alice", code: wrong }, "198.51.100.9");
  assert.notEqual(r.logs.at(-1)!.reason, "banned", "the ban ended on time");
  assert.equal((await r.login({ user: "alice", code: r.code() }, "198.51.100.9")).status, 303, "one failure after the ban does not ban again");
});

test("user names are validated before they become keys: a 4 KB name or control characters are malformed and never stored", async () => {
  const r = rig();
  for (const user of ["a".repeat(4000), "../etc", "a\u0000b", "x\ny", ""]) {
    const res = await r.login({ user, code: "123456" }, "198.51.100.20");
    assert.ok(res.status === 401 || res.status === 413, `${JSON.stringify(user.slice(0, 8))}: ${res.status}`);
  }
  assert.deepEqual(keysOf(r.regulator), ["a\u0000198.51.100.20"], "only the address was counted");
  assert.deepEqual(r.lookups, [], "no lookup for a malformed name");
  assert.equal((await r.login({ user: "b".repeat(3900), code: "123456" }, "198.51.100.21")).status, 401);
  assert.ok(r.logs.filter((l) => l.reason === "malformed").length >= 4);
  // Old code: `nothing stored for a 4 KB name` failed: the Regulator kept "user:aaaa…" (4 KB) as a key.
});

test("the refusal floor: every refusal is answered no earlier than REFUSAL_FLOOR_MS after it began; an accepted code is not held back", async () => {
  const r = rig();
  const wrong = wrongCode(SECRET, Math.floor(T0 / 30_000) - 2, Math.floor(T0 / 30_000) + 2);
  const start = r.now();
  await r.login({ user: "nosuch", code: wrong }, "198.51.100.30");
  assert.equal(r.now() - start, REFUSAL_FLOOR_MS);
  const start2 = r.now();
  await r.login({ user: "alice", code: wrong }, "198.51.100.31");
  assert.equal(r.now() - start2, REFUSAL_FLOOR_MS);
  const start3 = r.now();
  assert.equal((await r.login({ user: "alice", code: r.code() }, "198.51.100.32")).status, 303);
  assert.equal(r.now() - start3, 0);
});

test("unknown and known users take the same time (real clock, a directory slower for known users)", async () => {
  const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  const r = rig({
    realTime: true,
    directory: (lookups, account, store) => ({
      async find(name) {
        lookups.push(name);
        if (name.startsWith("alice")) {
          await wait(40); // e.g. the state file's directory on NFS, a group lookup
          return { kind: "found", account: { ...account, name } };
        }
        return { kind: "unknown" };
      },
      storeOf: () => store,
    }),
  });
  const wrong = wrongCode(SECRET, Math.floor(Date.now() / 30_000) - 2, Math.floor(Date.now() / 30_000) + 2);
  const timed = async (user: string, from: string) => {
    const t = performance.now();
    const res = await r.login({ user, code: wrong }, from);
    assert.equal(res.status, 401);
    return performance.now() - t;
  };
  // Twenty known users (one user has at most MAX_IN_FLIGHT_SUBJECT attempts in flight).
  const known = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(`alice${i}`, `10.1.0.${i}`)));
  const unknown = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(`nobody${i}`, `10.2.0.${i}`)));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const t of [...known, ...unknown]) assert.ok(t >= REFUSAL_FLOOR_MS - 2, `a refusal after ${t.toFixed(0)} ms`);
  const diff = Math.abs(median(known) - median(unknown));
  assert.ok(diff < 100, `medians: known ${median(known).toFixed(0)} ms, unknown ${median(unknown).toFixed(0)} ms`);
});

test("3,000 unknown-user logins (real user cache, slow NSS) do not stall other requests", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "passwd"), "alice:x:1001:1001::/home/alice:/bin/sh\n");
  writeFileSync(join(d, "group"), "");
  // getent sleeps 0.5 s: a lookup on the event loop would hold every request behind it that long.
  writeFileSync(join(d, "getent"), "#!/bin/sh\nsleep 0.5\nexit 2\n", { mode: 0o755 });
  const cache = new UserCache({ passwdPath: join(d, "passwd"), groupPath: join(d, "group"), getent: join(d, "getent"), nowMs: () => Date.now(), maxGetentPerSecond: 10 });
  const r = rig({
    realTime: true,
    directory: (lookups, _account, store) => {
      const real = createUserDirectory({ lookup: (n) => cache.lookup(n), timeoutMs: 2000, storeOf: stateFileStores("~/.google_authenticator") });
      return { find: (n) => (lookups.push(n), real.find(n)), storeOf: () => store };
    },
  });
  const health = async () => {
    const start = performance.now();
    const res = await r.app.handle({ method: "GET", target: "/healthz", headers: [["host", "app.test"]], remoteAddress: "192.0.2.1", body: null });
    assert.equal(res.status, 200);
    return performance.now() - start;
  };
  // A probe every 10 ms; its latency counts from when it was due (a blocked event loop delays the
  // timer as much as the answer).
  const probe = async (while_: () => boolean): Promise<number[]> => {
    const latencies: number[] = [];
    let due = performance.now();
    while (while_()) {
      due += 10;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
      latencies.push(performance.now() - due + (await health()));
      due = Math.max(due, performance.now() - 10);
    }
    return latencies.sort((a, b) => a - b);
  };
  // The machine's own noise (other tests run at the same time): one second of probes, no flood.
  const quietUntil = performance.now() + 1000;
  const quiet = await probe(() => performance.now() < quietUntil);
  let flooding = true;
  const prober = probe(() => flooding);
  const logins: Promise<GatewayResponse>[] = [];
  const floodStart = performance.now();
  for (let i = 0; i < 3000; i++) {
    logins.push(r.login({ user: `nosuch${i}`, code: "123456" }, `10.${(i >> 8) & 255}.${i & 255}.1`));
    if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 20)); // arriving over the network, ~1,000 a second
  }
  const answers = await Promise.all(logins);
  flooding = false;
  const latencies = await prober;
  const statuses = new Map<number, number>();
  for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  assert.equal((statuses.get(401) ?? 0) + (statuses.get(503) ?? 0), 3000, JSON.stringify([...statuses]));
  const seconds = (performance.now() - floodStart) / 1000;
  assert.ok(cache.spawned <= 2 + Math.ceil(10 * seconds), `${cache.spawned} getent processes in ${seconds.toFixed(1)} s (at most 10 a second, bursts of 2)`);
  const p = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;
  const figures = `health probes: quiet p50 ${p(quiet, 0.5).toFixed(1)} / max ${quiet.at(-1)!.toFixed(0)} ms; during the flood (${latencies.length} probes) p50 ${p(latencies, 0.5).toFixed(1)} / p99 ${p(latencies, 0.99).toFixed(0)} / max ${latencies.at(-1)!.toFixed(0)} ms; answers ${JSON.stringify([...statuses])}, ${cache.spawned} getent`;
  console.log(`# ${figures}`);
  assert.ok(latencies.length > 100, figures);
  // What load cannot change: every probe was answered, and getent ran (the lookups were real).
  assert.ok(cache.spawned >= 1, figures);
  // Generous bounds, as the point is the order of magnitude: the issue measured ~500 ms for EVERY
  // request (the event loop blocked by synchronous lookups), and a lookup on the loop here would
  // stop it for 500 ms per getent. A machine loaded by other work (CI at a load average of 12 on 2
  // CPUs) puts the median at ~60 ms and, rarely, the p90 at a few hundred: half the probes wait
  // < 400 ms more and nine in ten < 1,000 ms more; a blocked loop fails both.
  assert.ok(p(latencies, 0.5) < p(quiet, 0.5) + 400, figures);
  assert.ok(p(latencies, 0.9) < p(quiet, 0.9) + 1000, figures);
});

test("a directory that hangs: the login is refused at the lookup timeout like an unknown user, and counted against the address only", async () => {
  const r = rig({
    directory: (lookups, _account, store) => {
      const real = createUserDirectory({ lookup: () => new Promise(() => {}), timeoutMs: 50, storeOf: stateFileStores("~/.google_authenticator") });
      return { find: (n) => (lookups.push(n), real.find(n)), storeOf: () => store };
    },
  });
  const res = await r.login({ user: "alice", code: "123456" }, "198.51.100.40");
  assert.equal(res.status, 401);
  assert.match(String(res.body), /Wrong user name or code/);
  assert.equal(r.logs.at(-1)!.reason, "lookup-timeout");
  assert.deepEqual(keysOf(r.regulator), ["a\u0000198.51.100.40"], "the user is not slowed by the directory's trouble");
  assert.equal(r.store.current, STATE);
});

test("return URLs with non-ASCII: a correct code logs in with a 303 to a safe, encoded Location, never a 500", async () => {
  const cases: [string, string][] = [
    ["/\u0100", "/%C4%80"], // the form's rd=/%C4%80 arrives decoded
    ["/%C4%80", "/%C4%80"],
    ["/caf\u00e9?q=\u00fc", "/caf%C3%A9?q=%C3%BC"],
    ["https://bücher.example/\u0100", "https://xn--bcher-kva.example/%C4%80"],
    ["/\ud800", "/%EF%BF%BD"], // a lone surrogate: the form decoder makes it U+FFFD
  ];
  for (const [i, [rd, location]] of cases.entries()) {
    const r = rig();
    const res = await r.login({ user: "alice", code: r.code(), rd }, `198.51.100.${50 + i}`);
    assert.equal(res.status, 303, JSON.stringify(rd));
    assert.deepEqual(header(res, "location"), [location]);
    assert.ok(sessionSet(res));
  }
  // Old code: `status 500` for rd=/%C4%80 with the right code (Location "/Ā" cannot be written), the code used up.
});

test("the session is built before the code is used: if issuing it throws, the code is not consumed and works afterwards", async () => {
  let broken = true;
  const r = rig({
    sessions: (real) => ({
      ...real,
      issue(...args: Parameters<Sessions["issue"]>) {
        if (broken) throw new Error("keyring unreadable");
        return real.issue(...args);
      },
    }),
  });
  const code = r.code();
  const failed = await r.login({ user: "alice", code }, "198.51.100.60");
  assert.equal(failed.status, 500);
  assert.match(String(failed.body), /your code was not used/);
  assert.ok(!sessionSet(failed));
  assert.equal(r.store.current, STATE, "the state file is unchanged: no DISALLOW_REUSE step recorded");
  assert.deepEqual(r.logs.at(-1), { event: "login", result: "error", reason: "session", user: "alice", ip: "198.51.100.60", detail: "keyring unreadable" });
  broken = false;
  const ok = await r.login({ user: "alice", code }, "198.51.100.60");
  assert.equal(ok.status, 303, "the same code signs in once the fault is gone");
  assert.notEqual(r.store.current, STATE);
  assert.equal((await r.login({ user: "alice", code }, "198.51.100.60")).status, 401, "and is then used up");
});

test("after an accepted code nothing can cost the user the login: a log that throws still gives the 303 with the session", async () => {
  const r = rig({
    log: (e) => {
      if (e.result === "accepted") throw new Error("log pipe closed");
    },
  });
  const res = await r.login({ user: "alice", code: r.code() }, "198.51.100.70");
  assert.equal(res.status, 303);
  assert.ok(sessionSet(res));
  assert.notEqual(r.store.current, STATE, "the code was used, and paid for the session");
});

// ---- Red team 2 (issue 9 follow-up): F1, F2, F4, F5 ----

/** A directory whose answers wait for `open()`: every attempt let through is in flight at once. */
function gated() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const directory = (lookups: string[], account: CachedAccount, store: AccountStore): UserDirectory => ({
    async find(name) {
      lookups.push(name);
      await gate;
      return name === "alice" ? { kind: "found", account } : { kind: "unknown" };
    },
    storeOf: () => store,
  });
  return { directory, open: () => open() };
}
const settle = async () => {
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
};
const WRONG = () => wrongCode(SECRET, Math.floor(T0 / 30_000) - 2, Math.floor(T0 / 30_000) + 400);

test("F1: 20 wrong codes sent in parallel from one address: no more codes are checked than sequentially (one attempt per user and address in flight)", async () => {
  const g = gated();
  const r = rig({ directory: g.directory });
  const wrong = WRONG();
  const all = Array.from({ length: 20 }, () => r.login({ user: "alice", code: wrong }, "198.51.100.80"));
  await settle();
  const inFlight = r.lookups.length;
  g.open();
  const answers = await Promise.all(all);
  assert.equal(inFlight, 1, "one attempt for (alice, this address) in flight");
  assert.ok(
    answers.every((a) => a.status === 401 || a.status === 429),
    JSON.stringify(answers.map((a) => a.status)),
  );
  assert.ok(r.logs.filter((l) => l.reason === "busy").length >= 19, "the rest refused as busy, not counted");
  // Then sequentially: exactly max_retries + 1 codes are checked before the pair is banned.
  for (let i = 0; i < 10; i++) await r.login({ user: "alice", code: wrong }, "198.51.100.80");
  assert.equal(r.lookups.length, 6, "six guesses in all, as if sent one by one");
  // Old code: `one attempt for (alice, this address) in flight: 20 !== 1` (admit() before any await, fail() after).
});

test("F1: parallel attempts for many users from one address stay within the address's budget", async () => {
  const g = gated();
  const r = rig({ directory: g.directory });
  const all = Array.from({ length: 30 }, (_, i) => r.login({ user: `nosuch${i}`, code: "123456" }, "198.51.100.81"));
  await settle();
  const inFlight = r.lookups.length;
  g.open();
  await Promise.all(all);
  assert.ok(inFlight <= 4, `${inFlight} attempts from one address in flight (at most 4)`);
  for (let i = 0; i < 10; i++) await r.login({ user: `later${i}`, code: "123456" }, "198.51.100.81");
  assert.equal(r.lookups.length, 6, "six guesses from the address in all, then banned");
  // Old code: `30 attempts from one address in flight (at most 4)`.
});

test("F1: an attacker's parallel attempts from many addresses do not lock the owner out: the device cookie of the owner's earlier sign-in still gets in (RT-B F2)", async () => {
  const g = gated();
  // A wide window: the fake clock moves with every refusal's floor while the flood is answered.
  const r = rig({ directory: g.directory, state: `${SECRET}\n" WINDOW_SIZE 17\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n` });
  const ownerAddress = "192.0.2.99";
  g.open();
  const first = await r.login({ user: "alice", code: r.code() }, ownerAddress);
  assert.equal(first.status, 303);
  const device = header(first, "set-cookie")
    .find((c) => c.startsWith("otpgate_device="))!
    .split(";")[0]!;
  r.advance(60_000);
  const wrong = WRONG();
  for (let i = 0; i < 8; i++) await r.login({ user: "alice", code: wrong }, `198.51.100.${100 + i}`); // the user is now slowed
  const flood = Array.from({ length: 40 }, (_, i) => r.login({ user: "alice", code: wrong }, `203.0.113.${i}`));
  const owner = r.login({ user: "alice", code: r.code(1) }, ownerAddress, [["cookie", device]]);
  const answers = await Promise.all([...flood, owner]);
  assert.equal(answers.at(-1)!.status, 303, "the owner signs in during the flood");
  assert.ok(answers.slice(0, -1).filter((a) => a.status === 429).length >= 38, "the flood is paced: nearly all refused as 'slow down'");
});

test("F2: code-only mode: three wrong codes from strangers do not spend RATE_LIMIT: the owner gets in, and the state file (shared with SSH) is not touched", async () => {
  const state = `${SECRET}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;
  const r = rig({ state });
  const wrong = WRONG();
  for (let i = 1; i <= 3; i++) assert.equal((await r.login({ user: "alice", code: wrong }, `198.51.100.${120 + i}`)).status, 401);
  assert.equal(r.store.current, state, "the strangers' codes used no RATE_LIMIT slot");
  const owner = await r.login({ user: "alice", code: r.code() }, "192.0.2.120");
  assert.equal(owner.status, 303, "the owner's right code from a fourth address");
  assert.match(r.store.current!, /" RATE_LIMIT 3 30\n/, "RATE_LIMIT neither consumed nor honoured by the gateway");
  // Old code: `the strangers' codes used no RATE_LIMIT slot` (RATE_LIMIT 3 30 <t1> <t2> <t3>), then the owner `401 !== 303` (rate-limited).
});

test("F2: the per-user limiter bounds guessing across many addresses: attempts for one user at least the current delay apart, the rest refused without counting", async () => {
  const g = gated();
  const r = rig({ directory: g.directory });
  g.open();
  const wrong = WRONG();
  for (let i = 0; i < 6; i++) await r.login({ user: "alice", code: wrong }, `198.51.100.${130 + i}`); // six failures: delay 500 ms
  const lookupsBefore = r.lookups.length;
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => r.login({ user: "alice", code: wrong }, `203.0.113.${150 + i}`)));
  assert.equal(r.lookups.length - lookupsBefore, 1, "one attempt for alice per delay, from all addresses together");
  assert.equal(answers.filter((a) => a.status === 429).length, 19);
  assert.match(String(answers.find((a) => a.status === 429)!.body), /Too many attempts for this user right now/);
  assert.equal(r.logs.filter((l) => l.reason === "slow-down").length, 19);
  const subject = (r.regulator as unknown as { entries: Map<string, { count: number }> }).entries.get("s\u0000user:alice")!;
  assert.equal(subject.count, 7, "only the one attempt let through was counted");
  // Old code: `one attempt for alice per delay: 20 !== 1` (every address waited the delay in parallel, then all were checked).
});

test("F4: a busy or failing directory answers exactly like an unknown user (401 after the floor), not counted against the user; the log keeps the reason", async () => {
  for (const reason of ["busy", "timeout", "error"] as const) {
    const r = rig({
      directory: (lookups, _account, store) => ({
        async find(name) {
          lookups.push(name);
          return name.startsWith("busy") ? { kind: "unavailable", reason } : { kind: "unknown" };
        },
        storeOf: () => store,
      }),
    });
    const t0 = r.now();
    const unknown = await r.login({ user: "nosuch", code: "123456" }, "198.51.100.140");
    const t1 = r.now();
    const busy = await r.login({ user: "busyname", code: "123456" }, "198.51.100.141");
    const t2 = r.now();
    assert.equal(busy.status, unknown.status, `${reason}: same status as an unknown user`);
    assert.equal(busy.status, 401);
    const strip = (b: unknown) =>
      String(b)
        .replace(/value="[^"]*"/g, "")
        .replace(/busyname|nosuch/g, "");
    assert.equal(strip(busy.body), strip(unknown.body), `${reason}: same page`);
    assert.equal(t2 - t1, t1 - t0, `${reason}: same time`);
    assert.equal(r.logs.at(-1)!.reason, `lookup-${reason}`);
    assert.ok(!keysOf(r.regulator).some((k) => k.includes("busyname")), `${reason}: nothing counted against the user`);
  }
  // Old code: `busy: same status as an unknown user: 503 !== 401`.
});

test("F5: password_file: one address firing 40 sign-ins at once cannot fill the password-check queue: every refusal waits the floor, another user still signs in", async (t) => {
  const file = join(tempDir(t, "fixl-"), "passwords");
  await updatePasswordFile(file, "alice", await hashPassword("alice's long password"));
  const r = rig({ realTime: true, yaml: { password_file: file } });
  const attack = Array.from({ length: 40 }, async (_, i) => {
    const began = performance.now();
    const res = await r.login({ user: `nosuch${i}`, code: "123456", password: "guess guess guess" }, "198.51.100.160");
    return { status: res.status, ms: performance.now() - began };
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const victim = await r.login({ user: "alice", code: r.code(), password: "alice's long password" }, "192.0.2.160");
  const answers = await Promise.all(attack);
  assert.equal(victim.status, 303, "the other user signs in during the burst");
  for (const a of answers) assert.ok(a.ms >= REFUSAL_FLOOR_MS - 5, `a refusal answered after ${a.ms.toFixed(0)} ms (status ${a.status})`);
  assert.ok(
    answers.every((a) => a.status === 401 || a.status === 429 || a.status === 503),
    JSON.stringify(answers.map((a) => a.status)),
  );
  assert.ok(r.logs.filter((l) => l.reason === "password-no-password").length <= 6, "the address had at most max_retries + 1 password checks");
  assert.ok(
    r.logs.some((l) => l.reason === "password-no-password"),
    "and those it had were checked (a line without a password for the name)",
  );
  // Old code: `the other user signs in during the burst: 503 !== 303` (the queue was full of one address's checks; those beyond it got 503 at once, uncounted).
});

test("F2: with password_file set, RATE_LIMIT stays: wrong codes after the right password use it like every other front-end; a wrong password does not", async (t) => {
  const file = join(tempDir(t, "fixl-"), "passwords");
  await updatePasswordFile(file, "alice", await hashPassword("alice's long password"));
  const state = `${SECRET}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;
  const r = rig({ state, yaml: { password_file: file } });
  const wrong = WRONG();
  assert.equal((await r.login({ user: "alice", code: wrong, password: "not her password" }, "198.51.100.170")).status, 401);
  assert.equal(r.store.current, state, "a wrong password reaches no code and no RATE_LIMIT");
  assert.equal((await r.login({ user: "alice", code: wrong, password: "alice's long password" }, "198.51.100.171")).status, 401);
  assert.match(r.store.current!, /^" RATE_LIMIT 3 30 \d+$/m, "a wrong code with the right password is a RATE_LIMIT attempt");
});
