import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { base32Encode } from "../../src/core/base32.js";
import { DEFAULT_POLICY, verify } from "../../src/core/verify.js";
import { getOption, scratchEntries, secretLine } from "../../src/formats/ga-document.js";
import { formatNewStateFile } from "../../src/formats/ga-file.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { oracleCode } from "../helpers/otp-oracle.js";

// A drawn state file: its settings are kept next to the text so that the oracle can compute codes
// that are right for it (the text alone would leave the accepted branch to chance: 0 of 2,000 runs).
interface Drawn {
  readonly text: string;
  readonly secret: string;
  readonly mode: "totp" | "hotp";
  readonly window: number;
  readonly step: number;
  readonly reuse: boolean;
  readonly usedSteps: readonly number[];
  readonly codes: readonly number[];
}

const stateFile: fc.Arbitrary<Drawn> = fc
  .record({
    key: fc.uint8Array({ minLength: 10, maxLength: 20 }),
    mode: fc.constantFrom("totp" as const, "hotp" as const),
    rate: fc.option(fc.record({ attempts: fc.integer({ min: 1, max: 10 }), intervalSeconds: fc.integer({ min: 15, max: 600 }) }), { nil: undefined }),
    window: fc.option(fc.integer({ min: 1, max: 21 }), { nil: undefined }),
    step: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
    reuse: fc.boolean(),
    codes: fc.uniqueArray(fc.integer({ min: 10_000_000, max: 99_999_999 }), { maxLength: 5 }),
    used: fc.array(fc.integer({ min: 0, max: 10 }), { maxLength: 3 }),
  })
  .map((s) => {
    const secret = base32Encode(s.key);
    let text = formatNewStateFile({
      secret,
      mode: s.mode,
      rateLimit: s.rate,
      windowSize: s.window,
      stepSeconds: s.step,
      disallowReuse: s.reuse,
      scratchCodes: s.codes,
    });
    const usedSteps = s.reuse && s.mode === "totp" ? s.used.map((u) => 56_666_660 + u) : [];
    if (usedSteps.length > 0) text = text.replace('" DISALLOW_REUSE\n', `" DISALLOW_REUSE ${usedSteps.join(" ")}\n`);
    return { text, secret, mode: s.mode, window: s.window ?? 3, step: s.mode === "totp" ? (s.step ?? 30) : 30, reuse: s.reuse && s.mode === "totp", usedSteps, codes: s.codes };
  });

/** The window's offsets as the reference searches them: W=3 is -1..+1, even windows lean to the future. */
const windowRange = (w: number): [number, number] => [-Math.floor((w - 1) / 2), -Math.floor((w - 1) / 2) + w - 1];

/** How the entry is chosen; all but "arbitrary" are computed by the oracle from the drawn file. */
type EntryKind = "in-window" | "scratch" | "replay" | "outside-window" | "arbitrary";

const arbitraryEntry = fc.oneof(fc.stringMatching(/^[0-9]{6}$/), fc.stringMatching(/^[1-9][0-9]{7}$/), fc.string({ maxLength: 12 }), fc.stringMatching(/^[0-9]{1,20}$/));

interface Attempt {
  readonly kind: EntryKind;
  readonly arbitrary: string;
  readonly pick: number;
  readonly now: number;
  readonly noSkew: boolean;
}

const attempt: fc.Arbitrary<Attempt> = fc.record({
  kind: fc.constantFrom<EntryKind>("in-window", "in-window", "scratch", "replay", "outside-window", "arbitrary", "arbitrary"),
  arbitrary: arbitraryEntry,
  pick: fc.nat(),
  now: fc.integer({ min: 1_699_000_000, max: 1_701_000_000 }),
  noSkew: fc.boolean(),
});

/** The entry and clock for one attempt, and what the oracle says must happen (null: anything but a changed secret). */
function plan(d: Drawn, a: Attempt): { entry: string; now: number; expect: "accepted" | "replay" | null } {
  const [lo, hi] = windowRange(d.window);
  const span = hi - lo + 1;
  if (a.kind === "scratch" && d.codes.length > 0) return { entry: String(d.codes[a.pick % d.codes.length]), now: a.now, expect: "accepted" };
  if (a.kind === "replay" && d.usedSteps.length > 0) {
    const step = d.usedSteps[a.pick % d.usedSteps.length]!;
    return { entry: oracleCode(d.secret, step), now: step * d.step + (a.pick % d.step), expect: "replay" };
  }
  if (a.kind === "in-window" || a.kind === "outside-window" || a.kind === "replay" || a.kind === "scratch") {
    const inside = a.kind !== "outside-window";
    if (d.mode === "hotp") {
      // A fresh file has HOTP_COUNTER 1: the window is counters 1..W.
      const counter = inside ? 1 + (a.pick % span) : 1 + span + (a.pick % 5);
      return { entry: oracleCode(d.secret, counter), now: a.now, expect: inside ? "accepted" : null };
    }
    const current = Math.floor(a.now / d.step);
    const offset = inside ? lo + (a.pick % span) : hi + 1 + (a.pick % 5);
    const step = current + offset;
    const expect = inside ? (d.usedSteps.includes(step) ? "replay" : "accepted") : null;
    return { entry: oracleCode(d.secret, step), now: a.now, expect };
  }
  return { entry: a.arbitrary, now: a.now, expect: null };
}

test("property: a rejected code changes only bookkeeping, never the secret, emergency codes or used-code list; codes the oracle computes are accepted", (t) => {
  const seen = new Map<string, number>();
  const count = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);
  const runs = 2000;
  fc.assert(
    fc.property(stateFile, attempt, (d, a) => {
      const { entry, now, expect } = plan(d, a);
      const text = d.text;
      const r = verify(text, entry, now * 1000, { ...DEFAULT_POLICY, noSkewAdjust: a.noSkew }, nodeMacFactory);
      const next = r.next ?? text;
      if (expect === "accepted") assert.equal(r.outcome.kind, "accepted", `the oracle's code ${entry} for ${JSON.stringify(d)}`);
      if (expect === "replay") assert.deepEqual(r.outcome, { kind: "rejected", reason: "replay" });
      if (r.outcome.kind !== "accepted") {
        count(r.outcome.kind === "rejected" ? `rejected:${r.outcome.reason}` : r.outcome.kind);
        assert.equal(secretLine(next), secretLine(text));
        assert.deepEqual(
          scratchEntries(next).map((e) => e.code),
          scratchEntries(text).map((e) => e.code),
        );
        assert.equal(getOption(next, "DISALLOW_REUSE"), getOption(text, "DISALLOW_REUSE"));
        assert.equal(getOption(next, "TIME_SKEW"), getOption(text, "TIME_SKEW"));
        assert.equal(getOption(next, "WINDOW_SIZE"), getOption(text, "WINDOW_SIZE"));
        assert.equal(getOption(next, "HOTP_COUNTER") !== null, getOption(text, "HOTP_COUNTER") !== null);
      } else {
        count(`accepted:${r.outcome.via}`);
        assert.equal(secretLine(next), secretLine(text), "even an accepted code never changes the secret");
        const removed = scratchEntries(text).length - scratchEntries(next).length;
        assert.equal(removed, r.outcome.via === "scratch" ? 1 : 0);
        assert.equal(getOption(next, "WINDOW_SIZE"), getOption(text, "WINDOW_SIZE"));
        if (r.outcome.via === "totp") {
          assert.equal(oracleCode(d.secret, r.outcome.step), entry, "the accepted step is one whose code the oracle computes as the entry");
          if (d.reuse) assert.ok(getOption(next, "DISALLOW_REUSE")!.split(/\s+/).includes(String(r.outcome.step)), "the accepted step is recorded as used");
        } else if (r.outcome.via === "hotp") {
          assert.equal(oracleCode(d.secret, r.outcome.counter), entry);
          assert.equal(getOption(next, "HOTP_COUNTER"), String(r.outcome.counter + 1), "the counter moves past the accepted one");
        } else if (r.outcome.via === "scratch") {
          assert.ok(d.codes.includes(Number(entry)), "only a listed emergency code is accepted as one");
        }
      }
    }),
    { numRuns: runs },
  );
  // Both branches must really run, each kind of acceptance and the main kinds of refusal.
  const total = (prefix: string) => [...seen].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
  const summary = JSON.stringify(Object.fromEntries(seen));
  t.diagnostic(`outcomes over ${runs} runs: ${summary}`);
  assert.ok(total("accepted:") >= runs * 0.2, `accepted branch reached in at least 20% of runs: ${summary}`);
  assert.ok(total("rejected:") >= runs * 0.2, `rejected branch reached in at least 20% of runs: ${summary}`);
  for (const key of ["accepted:totp", "accepted:hotp", "accepted:scratch", "rejected:wrong", "rejected:replay", "rejected:malformed", "rejected:skew-pending"]) {
    assert.ok((seen.get(key) ?? 0) >= runs * 0.01, `${key} reached in at least 1% of runs: ${summary}`);
  }
});

test("property: an accepted TOTP code is refused when entered again (DISALLOW_REUSE)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 10, maxLength: 20 }), fc.integer({ min: 1_699_000_000, max: 1_701_000_000 }), fc.integer({ min: 0, max: 29 }), (key, now, later) => {
      const secret = base32Encode(key);
      const text = formatNewStateFile({ secret, mode: "totp", disallowReuse: true, scratchCodes: [] });
      const code = oracleCode(secret, Math.floor(now / 30));
      const first = verify(text, code, now * 1000, DEFAULT_POLICY, nodeMacFactory);
      assert.equal(first.outcome.kind, "accepted");
      const again = verify(first.next!, code, (now + later) * 1000, DEFAULT_POLICY, nodeMacFactory);
      assert.equal(again.outcome.kind, "rejected");
    }),
    { numRuns: 150 },
  );
});

test("property: an emergency code works exactly once", () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 10_000_000, max: 99_999_999 }), { minLength: 1, maxLength: 10 }), fc.nat(), (codes, pick) => {
      const text = formatNewStateFile({ secret: "JBSWY3DPEHPK3PXP", mode: "totp", scratchCodes: codes });
      const code = String(codes[pick % codes.length]);
      const first = verify(text, code, 1_700_000_000_000, DEFAULT_POLICY, nodeMacFactory);
      assert.equal(first.outcome.kind, "accepted");
      assert.equal(verify(first.next!, code, 1_700_000_001_000, DEFAULT_POLICY, nodeMacFactory).outcome.kind, "rejected");
    }),
    { numRuns: 150 },
  );
});
