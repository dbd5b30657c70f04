import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { base32Encode } from "../../src/core/base32.js";
import { DEFAULT_POLICY, verify } from "../../src/core/verify.js";
import { getOption, scratchEntries, secretLine } from "../../src/formats/ga-document.js";
import { formatNewStateFile } from "../../src/formats/ga-file.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { codeAt } from "../helpers/otp.js";

const stateFile = fc
  .record({
    key: fc.uint8Array({ minLength: 10, maxLength: 20 }),
    mode: fc.constantFrom("totp" as const, "hotp" as const),
    rate: fc.option(fc.record({ attempts: fc.integer({ min: 1, max: 10 }), intervalSeconds: fc.integer({ min: 15, max: 600 }) }), { nil: undefined }),
    window: fc.option(fc.integer({ min: 1, max: 21 }), { nil: undefined }),
    step: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
    reuse: fc.boolean(),
    codes: fc.array(fc.integer({ min: 10_000_000, max: 99_999_999 }), { maxLength: 5 }),
    used: fc.array(fc.integer({ min: 0, max: 10 }), { maxLength: 3 }),
  })
  .map((s) => {
    let text = formatNewStateFile({
      secret: base32Encode(s.key),
      mode: s.mode,
      rateLimit: s.rate,
      windowSize: s.window,
      stepSeconds: s.step,
      disallowReuse: s.reuse,
      scratchCodes: s.codes,
    });
    if (s.reuse && s.mode === "totp") text = text.replace('" DISALLOW_REUSE\n', `" DISALLOW_REUSE ${s.used.map((u) => 56_666_660 + u).join(" ")}\n`);
    return text;
  });

const entry = fc.oneof(
  fc.stringMatching(/^[0-9]{6}$/),
  fc.stringMatching(/^[1-9][0-9]{7}$/),
  fc.string({ maxLength: 12 }),
  fc.stringMatching(/^[0-9]{1,20}$/),
);

test("property: a rejected code changes only bookkeeping, never the secret, emergency codes or used-code list", () => {
  fc.assert(
    fc.property(stateFile, entry, fc.integer({ min: 1_699_000_000, max: 1_701_000_000 }), fc.boolean(), (text, code, now, noSkew) => {
      const r = verify(text, code, now * 1000, { ...DEFAULT_POLICY, noSkewAdjust: noSkew }, nodeMacFactory);
      const next = r.next ?? text;
      if (r.outcome.kind !== "accepted") {
        assert.equal(secretLine(next), secretLine(text));
        assert.deepEqual(scratchEntries(next).map((e) => e.code), scratchEntries(text).map((e) => e.code));
        assert.equal(getOption(next, "DISALLOW_REUSE"), getOption(text, "DISALLOW_REUSE"));
        assert.equal(getOption(next, "TIME_SKEW"), getOption(text, "TIME_SKEW"));
        assert.equal(getOption(next, "WINDOW_SIZE"), getOption(text, "WINDOW_SIZE"));
      } else {
        assert.equal(secretLine(next), secretLine(text), "even an accepted code never changes the secret");
        const removed = scratchEntries(text).length - scratchEntries(next).length;
        assert.equal(removed, r.outcome.via === "scratch" ? 1 : 0);
      }
    }),
    { numRuns: 400 },
  );
});

test("property: an accepted TOTP code is refused when entered again (DISALLOW_REUSE)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 10, maxLength: 20 }), fc.integer({ min: 1_699_000_000, max: 1_701_000_000 }), fc.integer({ min: 0, max: 29 }), (key, now, later) => {
      const secret = base32Encode(key);
      const text = formatNewStateFile({ secret, mode: "totp", disallowReuse: true, scratchCodes: [] });
      const code = codeAt(secret, Math.floor(now / 30));
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
