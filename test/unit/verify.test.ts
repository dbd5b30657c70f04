// Scenarios recorded by running the real pam_google_authenticator (see the compat doc), with fixed
// clocks: exact file bytes after each call. Expected codes come from the independent oracle
// (test/helpers/otp-oracle.ts: node:crypto per RFC 4226/6238), never from the generator under test.
import assert from "node:assert/strict";
import { test } from "node:test";
import { REFERENCE_SKEW_SEARCH_STEPS, SKEW_SEARCH_STEPS } from "../../src/core/time-skew.js";
import { DEFAULT_POLICY, verify, type VerifyPolicy } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { oracleCode as codeAt, oracleWrongCode as wrongCode } from "../helpers/otp-oracle.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const run = (text: string, entry: string, t: number, policy: VerifyPolicy = DEFAULT_POLICY) => verify(text, entry, t * 1000, policy, nodeMacFactory);
const file = (...lines: string[]) => [SECRET, ...lines].join("\n") + "\n";

test("TOTP with reuse and rate limit: accept, replay refused, next step accepted, 4th attempt rate-limited", () => {
  const t = 300000;
  let text = file('" RATE_LIMIT 3 30', '" WINDOW_SIZE 3', '" DISALLOW_REUSE', '" TOTP_AUTH', "12345678", "23456789");
  let r = run(text, codeAt(SECRET, 10000), t);
  assert.deepEqual(r.outcome, { kind: "accepted", via: "totp", step: 10000, offset: 0, prefix: "" });
  assert.equal(r.next, file('" RATE_LIMIT 3 30 300000', '" WINDOW_SIZE 3', '" DISALLOW_REUSE 10000', '" TOTP_AUTH', "12345678", "23456789"));
  text = r.next!;

  r = run(text, codeAt(SECRET, 10000), t + 5);
  assert.deepEqual(r.outcome, { kind: "rejected", reason: "replay" });
  assert.equal(r.next, text.replace("3 30 300000", "3 30 300000 300005"));
  text = r.next!;

  r = run(text, codeAt(SECRET, 10001), t + 31);
  assert.equal(r.outcome.kind, "accepted");
  assert.equal(r.next, file('" RATE_LIMIT 3 30 300005 300031', '" WINDOW_SIZE 3', '" DISALLOW_REUSE 10000 10001', '" TOTP_AUTH', "12345678", "23456789"));
  text = r.next!;

  r = run(text, wrongCode(SECRET, 9990, 10010), t + 32);
  assert.deepEqual(r.outcome, { kind: "rejected", reason: "wrong" });
  text = r.next!;
  r = run(text, codeAt(SECRET, 10001 + 0), t + 33);
  assert.deepEqual(r.outcome, { kind: "rejected", reason: "rate-limited" });
  assert.match(r.next!, /^" RATE_LIMIT 3 30 300031 300032 300033$/m);
  assert.match(r.next!, /^" DISALLOW_REUSE 10000 10001$/m, "a rate-limited attempt never reaches the code check");
});

test("DISALLOW_REUSE is edited in place like the reference (pruned tokens take their trailing blanks)", () => {
  const code = codeAt(SECRET, 10000);
  const a = run(file('" DISALLOW_REUSE 10001 9990', '" TOTP_AUTH'), code, 300000);
  assert.match(a.next!, /^" DISALLOW_REUSE 10001  10000$/m);
  const b = run(file('" DISALLOW_REUSE    9990\t10001  ', '" TOTP_AUTH'), code, 300000);
  assert.match(b.next!, /^" DISALLOW_REUSE 10001   10000$/m);
  const c = run(file('" DISALLOW_REUSE 10001 x', '" TOTP_AUTH'), code, 300000);
  assert.equal(c.outcome.kind, "invalid-state");
  assert.equal(c.next, null);
});

test("window offsets: W=3 is -1..+1, W=17 is -8..+8, even windows lean to the future", () => {
  const cases: [number, number, number][] = [
    [3, -1, 1],
    [17, -8, 8],
    [6, -2, 3],
    [2, 0, 1],
    [1, 0, 0],
  ];
  for (const [w, lo, hi] of cases) {
    const text = file(`" WINDOW_SIZE ${w}`, '" TOTP_AUTH');
    for (let i = lo - 2; i <= hi + 2; i++) {
      const r = run(text, codeAt(SECRET, 10000 + i), 300000, { ...DEFAULT_POLICY, noSkewAdjust: true });
      assert.equal(r.outcome.kind === "accepted", i >= lo && i <= hi, `W=${w} offset ${i}`);
    }
  }
});

test("STEP_SIZE and TIME_SKEW move the step that is checked", () => {
  const text = file('" STEP_SIZE 60', '" TIME_SKEW -2', '" TOTP_AUTH');
  const r = run(text, codeAt(SECRET, Math.floor(600000 / 60) - 2), 600000);
  assert.deepEqual(r.outcome, { kind: "accepted", via: "totp", step: 9998, offset: 0, prefix: "" });
  assert.equal(r.next, null, "without DISALLOW_REUSE or RATE_LIMIT nothing is written");
});

test("time-skew learning: three consecutive far-off codes set TIME_SKEW (the reference's scenario, with a skew inside otpgate's cap)", () => {
  let text = file('" TOTP_AUTH');
  let r = run(text, codeAt(SECRET, 11990), 12000 * 30);
  assert.deepEqual(r.outcome, { kind: "rejected", reason: "skew-pending" });
  assert.equal(r.next, file('" RESETTING_TIME_SKEW 12000-10', '" TOTP_AUTH'));
  text = r.next!;
  const same = run(text, codeAt(SECRET, 11990), 12000 * 30 + 10);
  assert.deepEqual(same, { outcome: { kind: "rejected", reason: "skew-pending" }, next: null }, "the same code again records nothing");
  r = run(text, codeAt(SECRET, 11991), 12001 * 30);
  assert.equal(r.next, file('" RESETTING_TIME_SKEW 12000-10 12001-10', '" TOTP_AUTH'));
  text = r.next!;
  r = run(text, codeAt(SECRET, 11992), 12002 * 30);
  assert.deepEqual(r.outcome, { kind: "accepted", via: "totp-skew-reset", step: 11992, skew: -10, prefix: "" });
  assert.equal(r.next, file('" TIME_SKEW -10', '" RESETTING_TIME_SKEW ', '" TOTP_AUTH'), "TIME_SKEW is inserted, RESETTING emptied in place");
  text = r.next!;
  r = run(text, codeAt(SECRET, 11993), 12003 * 30);
  assert.equal(r.outcome.kind, "accepted");
});

test("time-skew learning with a positive skew, and gaps or skew changes keep it pending", () => {
  let text = file('" TOTP_AUTH');
  for (const s of [0, 1, 2]) text = run(text, codeAt(SECRET, 5015 + s), (5000 + s) * 30).next!;
  assert.match(text, /^" TIME_SKEW 15$/m);
  let gap = file('" TOTP_AUTH');
  for (const s of [0, 3, 4]) gap = run(gap, codeAt(SECRET, 5015 + s), (5000 + s) * 30).next!;
  assert.match(gap, /^" RESETTING_TIME_SKEW 5000\+15 5003\+15 5004\+15$/m, "a gap of 3 steps restarts nothing but fails");
  assert.doesNotMatch(gap, /TIME_SKEW 15\n/);
});

test("otpgate difference: the code completing a skew reset is recorded in DISALLOW_REUSE", () => {
  let text = file('" DISALLOW_REUSE', '" TOTP_AUTH');
  for (const s of [0, 1, 2]) text = run(text, codeAt(SECRET, 11990 + s), (12000 + s) * 30).next!;
  assert.match(text, /^" DISALLOW_REUSE 11992$/m);
  const replay = run(text, codeAt(SECRET, 11992), 12002 * 30 + 20);
  assert.deepEqual(replay.outcome, { kind: "rejected", reason: "replay" });
});

test("the skew search is capped at ±SKEW_SEARCH_STEPS: three codes seen 2 hours ago replay nothing and change nothing", () => {
  assert.equal(SKEW_SEARCH_STEPS, 20);
  const start = file('" DISALLOW_REUSE', '" TOTP_AUTH');
  const twoHours = (2 * 3600) / 30;
  for (const sign of [-1, 1]) {
    let text = start;
    for (const s of [0, 1, 2]) {
      const r = run(text, codeAt(SECRET, 12000 + s + sign * twoHours), (12000 + s) * 30);
      assert.deepEqual(r, { outcome: { kind: "rejected", reason: "wrong" }, next: null }, `code ${s} of 3, ${sign * 2} h away`);
      text = r.next ?? text;
    }
    assert.equal(text, start, "no RESETTING_TIME_SKEW, no TIME_SKEW");
  }
  // The edge: 20 steps away is still evidence, 21 is not.
  assert.equal(run(start, codeAt(SECRET, 12000 - 20), 12000 * 30).outcome.kind === "rejected" && run(start, codeAt(SECRET, 12000 - 20), 12000 * 30).next !== null, true);
  assert.deepEqual(run(start, codeAt(SECRET, 12000 + 21), 12000 * 30), { outcome: { kind: "rejected", reason: "wrong" }, next: null });
});

test("a small skew is still learned; the reference's full search is available for the differential test", () => {
  let text = file('" TOTP_AUTH');
  for (const s of [0, 1, 2]) text = run(text, codeAt(SECRET, 12000 - 7 + s), (12000 + s) * 30).next!;
  assert.match(text, /^" TIME_SKEW -7$/m);
  let ref = file('" TOTP_AUTH');
  const policy = { ...DEFAULT_POLICY, skewSearchSteps: REFERENCE_SKEW_SEARCH_STEPS };
  for (const s of [0, 1, 2]) ref = run(ref, codeAt(SECRET, 11000 + s), (12000 + s) * 30, policy).next!;
  assert.match(ref, /^" TIME_SKEW -1000$/m);
});

test("noskewadj: a far-off code is simply wrong and nothing is recorded", () => {
  const r = run(file('" TOTP_AUTH'), codeAt(SECRET, 11000), 12000 * 30, { ...DEFAULT_POLICY, noSkewAdjust: true });
  assert.deepEqual(r, { outcome: { kind: "rejected", reason: "wrong" }, next: null });
});

test("HOTP counter: 1 -> 2 (match at 1) -> 4 (match at 3) -> 5 (failure) -> 5 (failure, no_increment_hotp)", () => {
  let text = file('" HOTP_COUNTER 1');
  let r = run(text, codeAt(SECRET, 1), 0);
  assert.deepEqual(r.outcome, { kind: "accepted", via: "hotp", counter: 1, prefix: "" });
  text = r.next!;
  assert.match(text, /^" HOTP_COUNTER 2$/m);
  r = run(text, codeAt(SECRET, 3), 0);
  text = r.next!;
  assert.match(text, /^" HOTP_COUNTER 4$/m);
  r = run(text, codeAt(SECRET, 1), 0);
  assert.deepEqual(r.outcome, { kind: "rejected", reason: "wrong" });
  text = r.next!;
  assert.match(text, /^" HOTP_COUNTER 5$/m);
  r = run(text, codeAt(SECRET, 1), 0, { ...DEFAULT_POLICY, noIncrementHotp: true });
  assert.equal(r.next, null);
  r = run(text, codeAt(SECRET, 7), 0);
  assert.equal(r.outcome.kind, "accepted", "window 3 looks ahead from 5 to 7");
  assert.equal(run(text, codeAt(SECRET, 8), 0).outcome.kind, "rejected");
});

test("emergency codes work once, in TOTP, HOTP and files with neither, and CRLF files", () => {
  for (const mode of ['" TOTP_AUTH', '" HOTP_COUNTER 3', '" WINDOW_SIZE 3']) {
    const text = file(mode, "12345678", "23456789");
    const r = run(text, "23456789", 1000);
    assert.deepEqual(r.outcome, { kind: "accepted", via: "scratch", remaining: 1, prefix: "" });
    assert.equal(r.next, file(mode, "12345678"));
    assert.equal(run(r.next!, "23456789", 1001).outcome.kind, "rejected");
  }
  const crlf = `${SECRET}\r\n" TOTP_AUTH\r\n12345678\r\n23456789\r\n`;
  const r = run(crlf, "12345678", 1000);
  assert.equal(r.next, `${SECRET}\r\n" TOTP_AUTH\r\n23456789\r\n`);
});

test("entry shapes: without allowPrefix the entry must be the code alone; 12345678 is a scratch code, not 345678", () => {
  const text = file('" TOTP_AUTH', "12345678");
  assert.deepEqual(run(text, "abc", 300000).outcome, { kind: "rejected", reason: "malformed" });
  assert.deepEqual(run(text, "x" + codeAt(SECRET, 10000), 300000).outcome, { kind: "rejected", reason: "malformed" });
  assert.equal(run(text, "12345678", 300000).outcome.kind, "accepted");
  const fp = run(text, "hunter2" + codeAt(SECRET, 10000), 300000, { ...DEFAULT_POLICY, allowPrefix: true });
  assert.deepEqual(fp.outcome, { kind: "accepted", via: "totp", step: 10000, offset: 0, prefix: "hunter2" });
  const pw = run(text, "pw12345678", 300000, { ...DEFAULT_POLICY, allowPrefix: true, noSkewAdjust: true });
  assert.deepEqual(pw.outcome, { kind: "accepted", via: "scratch", remaining: 0, prefix: "pw" });
});

test("invalid settings fail closed with the setting named; rate-limit bookkeeping before them is kept", () => {
  const bad: [string, string][] = [
    ['" STEP_SIZE 0', "STEP_SIZE"],
    ['" STEP_SIZE 61', "STEP_SIZE"],
    ['" WINDOW_SIZE 101', "WINDOW_SIZE"],
    ['" WINDOW_SIZE 3x', "WINDOW_SIZE"],
  ];
  for (const [line, setting] of bad) {
    const r = run(file(line, '" TOTP_AUTH'), codeAt(SECRET, 10000), 300000);
    assert.equal(r.outcome.kind, "invalid-state", line);
    assert.equal(r.outcome.kind === "invalid-state" && r.outcome.setting, setting);
    assert.equal(r.next, null);
  }
  const rl = run(file('" RATE_LIMIT 3 30 ', '" TOTP_AUTH'), codeAt(SECRET, 10000), 300000);
  assert.equal(rl.outcome.kind === "invalid-state" && rl.outcome.setting, "RATE_LIMIT", "a trailing space breaks RATE_LIMIT");
  assert.equal(rl.next, null);
  const withRate = run(file('" RATE_LIMIT 3 30', '" STEP_SIZE 99', '" TOTP_AUTH'), codeAt(SECRET, 10000), 300000);
  assert.equal(withRate.outcome.kind, "invalid-state");
  assert.match(withRate.next!, /RATE_LIMIT 3 30 300000/);
  const secret = verify('not base32!\n" TOTP_AUTH\n', "123456", 0, DEFAULT_POLICY, nodeMacFactory);
  assert.deepEqual(secret, { outcome: { kind: "invalid-state", setting: "SECRET", problem: "line 1 is not a base32-encoded secret" }, next: null });
});

test("an invalid STEP_SIZE still lets an emergency code through, like the reference", () => {
  const r = run(file('" STEP_SIZE 0', '" TOTP_AUTH', "12345678"), "12345678", 300000);
  assert.equal(r.outcome.kind, "accepted");
});

test("otpgate extension lines: SHA256 with 8 digits, and files mixing them with TOTP_AUTH are refused", () => {
  const text = file('" OTPGATE_ALGORITHM SHA256', '" OTPGATE_DIGITS 8', '" OTPGATE_TOTP_AUTH', "12345678");
  const code = codeAt(SECRET, 10000, "SHA256", 8);
  assert.equal(run(text, code, 300000).outcome.kind, "accepted");
  assert.equal(run(text, codeAt(SECRET, 10000), 300000).outcome.kind, "rejected", "the SHA1 6-digit code is not accepted");
  assert.equal(run(text, "12345678", 300000).outcome.kind, "accepted", "scratch codes still work");
  const mixed = file('" OTPGATE_ALGORITHM SHA512', '" TOTP_AUTH');
  assert.equal(run(mixed, codeAt(SECRET, 10000), 300000).outcome.kind, "invalid-state");
  const hotp = file('" OTPGATE_ALGORITHM SHA512', '" OTPGATE_DIGITS 7', '" OTPGATE_HOTP_COUNTER 4');
  const r = run(hotp, codeAt(SECRET, 5, "SHA512", 7), 0);
  assert.equal(r.outcome.kind, "accepted");
  assert.match(r.next!, /^" OTPGATE_HOTP_COUNTER 6$/m);
});

test("a file with neither TOTP_AUTH nor HOTP_COUNTER accepts only emergency codes", () => {
  assert.deepEqual(run(file('" WINDOW_SIZE 3'), codeAt(SECRET, 10000), 300000).outcome, { kind: "rejected", reason: "no-otp" });
});

test('rateLimit: "ignore" neither consumes nor honours RATE_LIMIT (a full RATE_LIMIT does not refuse, wrong codes write nothing); default unchanged', () => {
  const t = 300000;
  const ignore: VerifyPolicy = { ...DEFAULT_POLICY, rateLimit: "ignore" };
  const full = file('" RATE_LIMIT 3 30 299990 299995 299999', '" DISALLOW_REUSE', '" TOTP_AUTH');
  const wrong = wrongCode(SECRET, 9990, 10010);
  const w = run(full, wrong, t, ignore);
  assert.deepEqual(w.outcome, { kind: "rejected", reason: "wrong" });
  assert.equal(w.next, null, "a wrong code changes nothing: no RATE_LIMIT slot used");
  const ok = run(full, codeAt(SECRET, 10000), t, ignore);
  assert.equal(ok.outcome.kind, "accepted", "a full RATE_LIMIT does not refuse the right code");
  assert.equal(ok.next, full.replace('" DISALLOW_REUSE', '" DISALLOW_REUSE 10000'), "only the reuse list is written; RATE_LIMIT stays as it was");
  // The default (and "apply") is the reference: the same file refuses the right code.
  for (const policy of [DEFAULT_POLICY, { ...DEFAULT_POLICY, rateLimit: "apply" as const }]) {
    const ref = run(full, codeAt(SECRET, 10000), t, policy);
    assert.deepEqual(ref.outcome, { kind: "rejected", reason: "rate-limited" });
    assert.match(ref.next!, /^" RATE_LIMIT 3 30 299995 299999 300000$/m);
  }
  // A malformed RATE_LIMIT still makes the state invalid: the file is broken for every service.
  const bad = run(file('" RATE_LIMIT 3 30 ', '" TOTP_AUTH'), codeAt(SECRET, 10000), t, ignore);
  assert.equal(bad.outcome.kind === "invalid-state" && bad.outcome.setting, "RATE_LIMIT");
});
