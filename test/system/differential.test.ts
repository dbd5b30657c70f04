// Byte-compatibility, measured: the same sequence of login attempts, at the same frozen times, is run
// through the real pam_google_authenticator.so (pamtester under faketime) and through otpgate's
// verify(). After every attempt both must agree on accept/reject and on every byte of the file.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { REFERENCE_SKEW_SEARCH_STEPS } from "../../src/core/time-skew.js";
import { DEFAULT_POLICY, verify, type VerifyPolicy } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { codeAt } from "../helpers/otp.js";
import { pamService, pamtester, systemReady, tempDir } from "../helpers/system.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
/** otpgate's verify with its deliberate differences (recording the skew-reset code, the capped skew search) turned off. */
const REF: VerifyPolicy = { ...DEFAULT_POLICY, recordSkewResetCode: false, skewSearchSteps: REFERENCE_SKEW_SEARCH_STEPS };

function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

interface Scenario {
  readonly name: string;
  readonly file: string;
  readonly moduleArgs: string[];
  readonly policy: VerifyPolicy;
  readonly hotp: boolean;
  readonly step: number;
  readonly seed: number;
  readonly ops: number;
}

const body = (...lines: string[]) => lines.join("\n") + "\n";
const scenarios: Scenario[] = [
  {
    name: "reuse+rate",
    file: body(SECRET, '" RATE_LIMIT 3 30', '" WINDOW_SIZE 3', '" DISALLOW_REUSE', '" TOTP_AUTH', "12345678", "23456789", "34567890"),
    moduleArgs: [],
    policy: REF,
    hotp: false,
    step: 30,
    seed: 1,
    ops: 45,
  },
  { name: "window17 skew learning", file: body(SECRET, '" WINDOW_SIZE 17', '" DISALLOW_REUSE 55 x', '" TOTP_AUTH', "87654321"), moduleArgs: [], policy: REF, hotp: false, step: 30, seed: 2, ops: 30 },
  { name: "skew learning, no reuse list", file: body(SECRET, '" TOTP_AUTH', "11111111"), moduleArgs: [], policy: REF, hotp: false, step: 30, seed: 3, ops: 45 },
  {
    name: "noskewadj step 60 window 6",
    file: body(SECRET, '" WINDOW_SIZE 6', '" STEP_SIZE 60', '" DISALLOW_REUSE', '" TOTP_AUTH', "22222222"),
    moduleArgs: ["noskewadj"],
    policy: { ...REF, noSkewAdjust: true },
    hotp: false,
    step: 60,
    seed: 4,
    ops: 35,
  },
  {
    name: "CRLF and odd spacing",
    file: `${SECRET}\r\n" RATE_LIMIT 5 60\r\n\r\n" DISALLOW_REUSE  \t\r\n" TOTP_AUTH\r\n12345678\r\n\r\n23456789\r\n`,
    moduleArgs: [],
    policy: REF,
    hotp: false,
    step: 30,
    seed: 5,
    ops: 35,
  },
  { name: "HOTP", file: body(SECRET, '" RATE_LIMIT 10 30', '" WINDOW_SIZE 4', '" HOTP_COUNTER 1', "12345678", "23456789"), moduleArgs: [], policy: REF, hotp: true, step: 30, seed: 6, ops: 35 },
  {
    name: "HOTP no_increment_hotp",
    file: body(SECRET, '" HOTP_COUNTER 5', "12345678"),
    moduleArgs: ["no_increment_hotp"],
    policy: { ...REF, noIncrementHotp: true },
    hotp: true,
    step: 30,
    seed: 7,
    ops: 25,
  },
  { name: "rate limit 1 per 15", file: body(SECRET, '" RATE_LIMIT 1 15', '" DISALLOW_REUSE', '" TOTP_AUTH', "12345678"), moduleArgs: [], policy: REF, hotp: false, step: 30, seed: 8, ops: 30 },
];

test("otpgate and pam_google_authenticator.so agree byte for byte over random login sequences", { timeout: 300_000 }, (t) => {
  if (!systemReady(t, ["pamtester", "faketime", "pam_google_authenticator.so"])) return;
  const dir = tempDir(t);
  let compared = 0;
  const seen = new Map<string, number>();
  for (const sc of scenarios) {
    const path = join(dir, `${sc.name.replace(/\W+/g, "-")}.ga`);
    const service = pamService(t, [`auth required pam_google_authenticator.so secret=${path} user=root ${sc.moduleArgs.join(" ")}`]);
    const rnd = lcg(sc.seed);
    let text = sc.file;
    writeFileSync(path, text, { mode: 0o400 });
    let now = 1_700_000_000 + sc.seed * 1000;
    let counter = sc.hotp ? 1 : 0;
    let skewRun = 0;
    const scratch = ["12345678", "23456789", "34567890", "87654321", "11111111", "22222222"];
    const attempt = (entry: string, at: number): void => {
      const ours = verify(text, entry, at * 1000, sc.policy, nodeMacFactory);
      const theirs = pamtester(service, "root", entry, at);
      const after = readFileSync(path, "latin1");
      const expected = ours.next ?? text;
      const where = `${sc.name}, attempt ${compared}: entry "${entry}" at ${at}`;
      assert.equal(ours.outcome.kind === "accepted", theirs.ok, `${where}: otpgate ${JSON.stringify(ours.outcome)}, module ${theirs.out.trim()}`);
      assert.equal(expected, after, `${where}: files differ`);
      const label = ours.outcome.kind === "accepted" ? `accepted:${ours.outcome.via}` : ours.outcome.kind === "rejected" ? `rejected:${ours.outcome.reason}` : "invalid-state";
      seen.set(label, (seen.get(label) ?? 0) + 1);
      text = after;
      chmodSync(path, 0o400);
      compared++;
    };
    for (let i = 0; i < sc.ops; i++) {
      now += [0, 1, 5, 14, 29, 31, 61, 400][rnd(8)]!;
      const tm = Math.floor(now / sc.step);
      let entry: string;
      const pick = rnd(12);
      if (sc.hotp) {
        entry =
          pick < 6
            ? codeAt(SECRET, counter + rnd(6))
            : pick < 8
              ? scratch[rnd(scratch.length)]!
              : pick < 10
                ? String(100000 + rnd(899999))
                : ["", "abc", "1234567", "99" + codeAt(SECRET, counter)][rnd(4)]!;
        if (pick < 6) counter += rnd(3);
      } else if (pick < 5) entry = codeAt(SECRET, tm + rnd(5) - 2);
      else if (pick < 7) {
        // codes from a phone whose clock is ~700 steps behind, entered at consecutive steps
        const skew = -700 - rnd(2);
        for (let k = 0; k < 2; k++) {
          attempt(codeAt(SECRET, Math.floor(now / sc.step) + skew), now);
          now += sc.step;
        }
        entry = codeAt(SECRET, Math.floor(now / sc.step) + skew + (skewRun++ % 2));
      } else if (pick < 9) entry = scratch[rnd(scratch.length)]!;
      else if (pick < 11) entry = String(rnd(1000000)).padStart(6, "0");
      else entry = ["", "abc", "1234567", "7" + codeAt(SECRET, tm), "0" + scratch[0]!][rnd(5)]!;
      attempt(entry, now);
    }
  }
  t.diagnostic(`${compared} attempts compared byte for byte with the reference module: ${JSON.stringify(Object.fromEntries(seen))}`);
  for (const label of [
    "accepted:totp",
    "accepted:totp-skew-reset",
    "accepted:hotp",
    "accepted:scratch",
    "rejected:wrong",
    "rejected:replay",
    "rejected:rate-limited",
    "rejected:skew-pending",
    "rejected:malformed",
    "invalid-state",
  ]) {
    assert.ok((seen.get(label) ?? 0) > 0, `the sequences never produced ${label}; adjust them so every path is compared`);
  }
});
