// The owner is never paced out by attackers (red team RT-B, F2). The old exemption from per-user
// pacing ("an address the owner signed in from in the last 30 days") was one entry in the
// regulator's LRU, which attackers feed: lost at a restart, unknown to other instances and evicted
// first by a flood of distinct addresses. Then an attacker loop that takes every pacing slot shuts
// the owner out with the right code. Now a successful sign-in sets a device cookie (OWASP "device
// cookies"), sealed for its own purpose and naming the user: an attempt for that user carrying it
// is exempt from per-user pacing, on any instance that shares the keys, after a restart, whatever
// the regulator forgot. A stolen device cookie is no guessing licence: after max_retries failures
// with it, it stops exempting until its lockout ends. In-process, fixed clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Regulator } from "../../src/core/web/index.js";
import { gatewayCookies } from "../../src/adapters/http/cookie-names.js";
import type { CachedAccount } from "../../src/adapters/http/user-directory.js";
import type { UserDirectory } from "../../src/adapters/http/user-directory.js";
import type { GatewayResponse } from "../../src/adapters/http/gateway-types.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { appRequest, testApp, type TestApp } from "../helpers/gateway-app.js";
import { codeAt, wrongCode } from "../helpers/otp.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const STATE = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;
const HOME = "198.51.100.7";

/** An instance of the gateway app whose only enrolled user is alice (state file `store`, shared between instances). */
function instance(store: MemoryAccountStore, yaml: Record<string, unknown> = {}): TestApp {
  const account: CachedAccount = { name: "alice", uid: 1001, gid: 1001, home: "/home/alice", groups: [1001] };
  const users: UserDirectory = {
    async find(name) {
      return name === "alice" ? { kind: "found", account } : { kind: "unknown" };
    },
    storeOf: () => store,
  };
  return testApp({ allowed_hosts: ["app.test"], ...yaml }, { users });
}

const setCookies = (res: GatewayResponse) => res.headers.filter(([n]) => n === "set-cookie").map(([, v]) => v);

/** A sign-in through the whole app (form, CSRF, POST); `cookies` are sent besides the CSRF cookie. */
async function login(t: TestApp, code: string, from: string, cookies = "", user = "alice"): Promise<GatewayResponse> {
  const page = await appRequest(t.app, "/_otpgate/login", { remoteAddress: from });
  const csrfCookie = page
    .all("set-cookie")
    .map((c) => c.split(";")[0]!)
    .join("; ");
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
  const body = new URLSearchParams({ csrf, rd: "/", user, code }).toString();
  return t.app.handle({
    method: "POST",
    target: "/_otpgate/login",
    headers: [
      ["host", "app.test"],
      ["content-type", "application/x-www-form-urlencoded"],
      ["content-length", String(Buffer.byteLength(body))],
      ["cookie", [csrfCookie, cookies].filter(Boolean).join("; ")],
    ],
    remoteAddress: from,
    body: (async function* () {
      yield Buffer.from(body);
    })(),
  });
}

/** What a browser keeps from a successful sign-in besides the session and CSRF cookies ("name=value; ..."). */
function keptBesidesSession(t: TestApp, res: GatewayResponse): string {
  const names = gatewayCookies(t.config);
  return setCookies(res)
    .filter((c) => !/;\s*Max-Age=0/i.test(c))
    .map((c) => c.split(";")[0]!)
    .filter((pair) => {
      const name = pair.slice(0, pair.indexOf("="));
      return name !== names.session && name !== names.csrf;
    })
    .join("; ");
}

const step = (t: TestApp) => Math.floor(t.clock.nowMs() / 30_000);
const code = (t: TestApp) => codeAt(SECRET, step(t));
const wrong = (t: TestApp) => wrongCode(SECRET, step(t) - 2, step(t) + 2);

let attacker = 0;
/** One attacker guess for alice from a new address, admitted or not (as the login handler would count it). */
function attackerGuess(r: Regulator, now: number): string {
  const reservation = r.begin({ subject: "user:alice", address: `203.0.${(attacker >> 8) & 255}.${attacker++ & 255}` }, now);
  if (reservation.kind === "allowed") r.settle(reservation.ticket, now, "guess");
  return reservation.kind;
}

/** Drive alice's slow-down to the cap (10 s) from rotating addresses, ending at `now`; returns the time after. */
function driveDelay(r: Regulator, now: number): number {
  for (let i = 0; i < 12; i++) {
    attackerGuess(r, now);
    now += 11_000;
  }
  assert.equal(r.delayOf("user:alice", now), 10_000, "the attack has slowed alice to the cap");
  return now;
}

/** The attacker's loop takes the pacing slot at `now` (as a loop that asks continuously does after every delay). */
function holdSlot(r: Regulator, now: number): void {
  assert.equal(attackerGuess(r, now), "allowed", "the attacker's guess takes the slot");
  assert.equal(attackerGuess(r, now + 1), "slow", "the next one is paced");
}

test("restart or another instance: the owner's device cookie from instance A exempts them on a new instance B (same keys) while an attacker holds the pacing slot", async () => {
  const store = new MemoryAccountStore(STATE);
  const a = instance(store);
  const first = await login(a, code(a), HOME);
  assert.equal(first.status, 303, "the owner signs in on A");
  const device = keptBesidesSession(a, first);
  assert.notEqual(device, "", "a successful sign-in sets a device cookie");

  // A restarts (or the owner's next request lands on instance B): a new app, the same keys, nothing in memory.
  const b = instance(store);
  b.clock.now = a.clock.now + 3600_000;
  let now = driveDelay(b.regulator, b.clock.now);
  holdSlot(b.regulator, now);
  b.clock.now = now + 100;
  const without = await login(b, code(b), HOME);
  assert.equal(without.status, 429, "without the device cookie (even from the address it signed in from), pacing applies as before");

  now = b.clock.now + 20_000;
  holdSlot(b.regulator, now);
  b.clock.now = now + 100;
  const owner = await login(b, code(b), HOME, device);
  assert.equal(owner.status, 303, "with the device cookie the owner gets in on B although the attacker holds the slot");
  assert.ok(b.logs.some((l) => l.event === "login" && l.result === "accepted" && l.user === "alice"));
});

test("a flood of tens of thousands of distinct addresses cannot evict the owner's exemption", async () => {
  const store = new MemoryAccountStore(STATE);
  const t = instance(store);
  const first = await login(t, code(t), HOME);
  assert.equal(first.status, 303);
  const device = keptBesidesSession(t, first);
  assert.notEqual(device, "", "a successful sign-in sets a device cookie");

  let now = driveDelay(t.regulator, t.clock.nowMs() + 60_000);
  // The flood: 6 unknown-user attempts from each of 20,000 IPv6 /64s of one /48 (each makes new keys).
  for (let p = 0; p < 20_000; p++) {
    const address = `2001:db8:beef:${p.toString(16)}::`;
    for (let k = 0; k < 6; k++) {
      const reservation = t.regulator.begin({ subject: `user:x${p}-${k}`, address }, now);
      if (reservation.kind === "allowed") t.regulator.settle(reservation.ticket, now, "guess");
    }
  }
  assert.ok(t.regulator.size <= t.config.regulation.maxEntries, "the regulator stayed within its cap");
  now = driveDelay(t.regulator, now + 1000);
  holdSlot(t.regulator, now);
  t.clock.now = now + 100;
  assert.equal((await login(t, code(t), HOME)).status, 429, "without the device cookie the owner is paced, even from the address they signed in from");

  now = t.clock.nowMs() + 20_000;
  holdSlot(t.regulator, now);
  t.clock.now = now + 100;
  const owner = await login(t, code(t), HOME, device);
  assert.equal(owner.status, 303, "after the flood the device cookie still exempts the owner");
});

test("a stolen device cookie is no guessing licence: after max_retries failures with it, it stops exempting until its lockout ends", async () => {
  const store = new MemoryAccountStore(STATE);
  const t = instance(store);
  const first = await login(t, code(t), HOME);
  const device = keptBesidesSession(t, first);
  assert.notEqual(device, "", "a successful sign-in sets a device cookie");
  const maxRetries = t.config.regulation.maxRetries;

  let now = driveDelay(t.regulator, t.clock.nowMs() + 60_000);
  const statuses: number[] = [];
  for (let i = 0; i < maxRetries + 2; i++) {
    holdSlot(t.regulator, now);
    t.clock.now = now + 100;
    // The thief guesses from a new address each time (so no pair or address ban stops them first).
    statuses.push((await login(t, wrong(t), `192.0.2.${100 + i}`, device)).status);
    now = t.clock.nowMs() + 20_000;
  }
  assert.deepEqual(statuses, [...Array<number>(maxRetries).fill(401), 429, 429], "max_retries guesses are exempt (checked, 401), then the cookie is paced like any client (429)");

  // The lockout ends (ban_time later, still under attack): the cookie exempts again.
  now += t.config.regulation.banTimeMs;
  now = driveDelay(t.regulator, now);
  holdSlot(t.regulator, now);
  t.clock.now = now + 100;
  assert.equal((await login(t, code(t), HOME, device)).status, 303, "after its lockout the cookie exempts its owner again");
});

test("the device cookie: __Host- behind https, HttpOnly, SameSite=Strict, Path=/, Max-Age 30 days; the app never receives it and cannot set it", async () => {
  const store = new MemoryAccountStore(STATE);
  const t = instance(store, { public_url: "https://app.test" });
  const first = await login(t, code(t), HOME);
  assert.equal(first.status, 303);
  const line = setCookies(first).find((c) => c.startsWith("__Host-otpgate_device="));
  assert.ok(line, `a __Host- device cookie is set: ${setCookies(first).join(" | ")}`);
  const attributes = line
    .split(";")
    .slice(1)
    .map((s) => s.trim());
  for (const a of ["Path=/", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=2592000"]) assert.ok(attributes.includes(a), `${a} in ${line}`);
  assert.ok(!attributes.some((a) => /^Domain=/i.test(a)), "no Domain");

  const session = setCookies(first)
    .find((c) => c.startsWith("__Host-otpgate_session="))!
    .split(";")[0]!;
  const device = line.split(";")[0]!;
  t.upstream.reply = () => ({
    status: 200,
    headers: [
      ["set-cookie", "__Host-otpgate_device=planted; Path=/; Secure"],
      ["set-cookie", "otpgate_device=planted; Path=/"],
      ["set-cookie", "app=1; Path=/"],
    ],
    body: "ok",
  });
  const res = await appRequest(t.app, "/page", { headers: { cookie: `${session}; ${device}; otpgate_device=x; app=2` } });
  assert.equal(res.status, 200);
  assert.deepEqual(res.all("set-cookie"), ["app=1; Path=/"], "the app cannot set the device cookie");
  const sent = t.upstream.seen
    .at(-1)!
    .req.headers.filter(([n]) => n === "cookie")
    .map(([, v]) => v);
  assert.deepEqual(sent, ["app=2"], "the app never receives the device cookie");
});

test("a device cookie exempts only its own user, and log out everywhere ends it", async () => {
  const store = new MemoryAccountStore(STATE);
  const t = instance(store);
  const first = await login(t, code(t), HOME);
  const device = keptBesidesSession(t, first);
  assert.notEqual(device, "", "a successful sign-in sets a device cookie");
  const at = device.length - 12; // a character in the middle of the sealed value (all of its bits count)
  const tampered = device.slice(0, at) + (device[at] === "A" ? "B" : "A") + device.slice(at + 1);

  let now = driveDelay(t.regulator, t.clock.nowMs() + 60_000);
  holdSlot(t.regulator, now);
  t.clock.now = now + 100;
  assert.equal((await login(t, code(t), HOME, tampered)).status, 429, "a tampered device cookie exempts nothing");

  t.sessions.revokeUser("alice", t.clock.nowMs());
  now = t.clock.nowMs() + 20_000;
  holdSlot(t.regulator, now);
  t.clock.now = now + 100;
  assert.equal((await login(t, code(t), HOME, device)).status, 429, "after log out everywhere the old device cookie exempts nothing");
});
