// Red team rt1, Findings 2 and 5 (issue 10): nothing a client sends may reach the state file as a
// line of its own (PAM_RHOST under grace_period), and with rateLimit "ignore" a refusal changes
// nothing in the state (a stranger's wrong HOTP code must not burn the owner's codes). Fixed clock;
// codes from node:crypto directly (an oracle independent of the generator under test).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { graceHostProblem, recordLogin, withinGrace } from "../../src/core/grace.js";
import { getOption, scratchEntries, setOption } from "../../src/formats/ga-document.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { decideLogin, logOf, type LoginDeps, type LoginFactors, type LoginRequest } from "../../src/services/login.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const NOW_MS = 1_700_000_010_000;
const NOW = NOW_MS / 1000;
const STEP = Math.floor(NOW / 30);
const CODE_ONLY: LoginFactors = { password: false, requirePublickey: false, nullok: false, noSkewAdjust: true, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false };

function base32Decode(s: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function oracle(counterValue: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(counterValue));
  const mac = createHmac("sha1", base32Decode(SECRET)).update(counter).digest();
  const o = mac[mac.length - 1]! & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, "0");
}

function rig(store: MemoryAccountStore, now = () => NOW_MS): LoginDeps {
  return {
    openAccount: (user) => (user === "alice" ? { store, location: "memory" } : null),
    checkPassword: async (_user, given) => given === "pw",
    clock: { nowMs: now },
    macFactory: nodeMacFactory,
    sleep: async () => {},
  };
}

const req = (token: string, factors: Partial<LoginFactors> = {}, extra: Partial<LoginRequest> = {}): LoginRequest => ({
  user: "alice",
  token,
  service: "test",
  factors: { ...CODE_ONLY, ...factors },
  ...extra,
});

const HOSTILE_HOSTS = ['evil 1\n98765432\n" X', "a\rb", "a\0b", "a b", "a\tb", 'a"b', "", "x".repeat(256), "h\u00e9", "a\x7fb"];

test("F2: a PAM_RHOST with a line break, blank or quote never reaches the state file; that login gets no grace and the log says so", async () => {
  for (const rhost of HOSTILE_HOSTS) {
    const text = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
    const store = new MemoryAccountStore(text);
    const d = await decideLogin(rig(store), req(oracle(STEP), { gracePeriodSeconds: 600 }, { rhost }));
    assert.equal(d.outcome === "accepted" && d.via, "totp", `the right code is still accepted (rhost ${JSON.stringify(rhost)})`);
    const after = store.current!;
    assert.deepEqual(scratchEntries(after), [], `no emergency code was injected (rhost ${JSON.stringify(rhost)})`);
    assert.equal(getOption(after, "LAST0"), null, `nothing recorded for rhost ${JSON.stringify(rhost)}`);
    assert.equal(after.split("\n").length, text.split("\n").length, "no line was added");
    assert.equal(logOf(d, false).fields.grace, "not-recorded", "the log line tells why grace will not apply");
    const again = await decideLogin(rig(store), req("", { gracePeriodSeconds: 600 }, { rhost }));
    assert.equal(again.outcome, "rejected", "no grace for such a host");
  }
});

test("F2: a well-formed host is still recorded and honoured (IPv4, IPv6, a name)", async () => {
  for (const rhost of ["10.0.0.1", "2001:db8::1", "host-1.example.org", "x".repeat(255)]) {
    assert.equal(graceHostProblem(rhost), null, rhost);
    const store = new MemoryAccountStore(`${SECRET}\n" TOTP_AUTH\n`);
    const first = await decideLogin(rig(store), req(oracle(STEP), { gracePeriodSeconds: 600 }, { rhost }));
    assert.equal(first.outcome, "accepted");
    assert.equal(getOption(store.current!, "LAST0"), `${rhost} ${NOW}`);
    assert.equal((await decideLogin(rig(store), req("", { gracePeriodSeconds: 600 }, { rhost }))).outcome, "accepted");
  }
});

test("F2: grace.ts itself neither records nor matches a hostile host (defence in depth)", () => {
  const text = `${SECRET}\n" TOTP_AUTH\n`;
  for (const rhost of HOSTILE_HOSTS) {
    assert.notEqual(graceHostProblem(rhost), null, JSON.stringify(rhost));
    assert.equal(recordLogin(text, rhost, NOW), text, `unchanged for ${JSON.stringify(rhost)}`);
  }
  // An existing empty-host entry (a line `" LAST0 123`) must not give grace to an empty rhost.
  assert.equal(withinGrace(`${SECRET}\n" LAST0 ${NOW}\n`, "", NOW + 1, 600), false);
});

test("F2: setOption refuses a key or value containing CR, LF or NUL and writes nothing", () => {
  const text = `${SECRET}\n" TOTP_AUTH\n`;
  for (const bad of ["1\n98765432", "1\r98765432", "1\0", "\n"]) {
    assert.throws(() => setOption(text, "LAST0", bad), /line break|NUL/);
    assert.throws(() => setOption(text, `LAST0${bad}`, "1"), /line break|NUL/);
  }
  assert.equal(setOption(text, "LAST0", "h 1"), `${SECRET}\n" LAST0 h 1\n" TOTP_AUTH\n`);
});

const HOTP_TEXT = `${SECRET}\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" HOTP_COUNTER 1\n`;

test('F5: with rateLimit "ignore" a wrong HOTP code (and any other refusal) leaves the state byte-identical', async () => {
  const store = new MemoryAccountStore(HOTP_TEXT);
  const deps = rig(store);
  const right = [oracle(1), oracle(2), oracle(3)];
  let wrong = 0;
  for (let i = 0; wrong < 10; i++) {
    const code = String(100000 + i);
    if (right.includes(code)) continue;
    wrong++;
    const d = await decideLogin(deps, req(code, { rateLimit: "ignore" }));
    assert.equal(d.outcome === "rejected" && d.reason, "wrong");
  }
  assert.equal(store.current, HOTP_TEXT, "ten wrong codes changed nothing (HOTP_COUNTER stays 1)");
  // password + code: right password, wrong code: nothing either.
  const pw = await decideLogin(deps, req("pw000000", { rateLimit: "ignore", password: true }));
  assert.equal(pw.outcome, "rejected");
  assert.equal(store.current, HOTP_TEXT, "password+wrong code with ignore changed nothing");
  // The owner's next code is still accepted and committed.
  const ok = await decideLogin(deps, req(oracle(1), { rateLimit: "ignore" }));
  assert.equal(ok.outcome === "accepted" && ok.via, "hotp");
  assert.equal(getOption(store.current!, "HOTP_COUNTER"), "2", "an accepted code still commits");
  const replay = await decideLogin(deps, req(oracle(1), { rateLimit: "ignore" }));
  assert.equal(replay.outcome, "rejected", "and cannot be used twice");
  const okPw = await decideLogin(deps, req(`pw${oracle(2)}`, { rateLimit: "ignore", password: true }));
  assert.equal(okPw.outcome === "accepted" && okPw.via, "hotp+password");
  assert.equal(getOption(store.current!, "HOTP_COUNTER"), "3");
});

test('F5: with rateLimit "apply" (the reference) a wrong HOTP code still advances the counter and counts for RATE_LIMIT', async () => {
  const store = new MemoryAccountStore(HOTP_TEXT);
  const d = await decideLogin(rig(store), req("000000" === oracle(1) ? "000001" : "000000"));
  assert.equal(d.outcome, "rejected");
  assert.equal(getOption(store.current!, "HOTP_COUNTER"), "2");
  assert.match(getOption(store.current!, "RATE_LIMIT")!, /^3 30 \d+$/);
});

test('F5: with rateLimit "ignore" a skew-learning refusal (TOTP far off) writes nothing either', async () => {
  const text = `${SECRET}\n" TOTP_AUTH\n`;
  const store = new MemoryAccountStore(text);
  const d = await decideLogin(rig(store), req(oracle(STEP + 10), { rateLimit: "ignore", noSkewAdjust: false }));
  assert.equal(d.outcome === "rejected" && d.reason, "skew-pending");
  assert.equal(store.current, text);
});
