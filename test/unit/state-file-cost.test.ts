// A crafted state file (up to the store's 64 KiB limit) must not make a login check expensive:
// the work of verify() grows linearly with the file. Old code edited duplicate option lines and
// expired DISALLOW_REUSE steps out one at a time, re-copying the text each time (quadratic).
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_POLICY, verify } from "../../src/core/verify.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { codeAt } from "../helpers/otp.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const NOW = 300_000_000_000;
const CODE = codeAt(SECRET, NOW / 30_000);

const shapes: Record<string, (n: number) => string> = {
  "duplicate RATE_LIMIT lines": (n) => `${SECRET}\n" RATE_LIMIT 3 30\n` + `" RATE_LIMIT\n`.repeat(n) + `" DISALLOW_REUSE\n" TOTP_AUTH\n`,
  "duplicate DISALLOW_REUSE lines": (n) => `${SECRET}\n" DISALLOW_REUSE\n` + `" DISALLOW_REUSE 5\n`.repeat(n) + `" TOTP_AUTH\n`,
  "a long list of expired steps": (n) => `${SECRET}\n" DISALLOW_REUSE ${Array.from({ length: n }, (_, i) => String(i + 1)).join(" ")}\n" TOTP_AUTH\n`,
};

/** Fastest of up to 5 runs, stopping at the first under `budget` ms (a loaded machine only adds). */
function fastest(text: string, budget: number): number {
  let min = Infinity;
  for (let k = 0; k < 5 && min >= budget; k++) {
    const t0 = process.hrtime.bigint();
    const r = verify(text, CODE, NOW, DEFAULT_POLICY, nodeMacFactory);
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e6);
    assert.equal(r.outcome.kind, "accepted");
  }
  return min;
}

// 20,000 crafted lines (several times the store's 64 KiB limit, so the margin is wide): linear
// work is a few ms; the old quadratic edits took 0.1 s (RATE_LIMIT) to seconds (DISALLOW_REUSE).
// A generous sanity bound, not a benchmark (npm run bench measures speed).
for (const [name, make] of Object.entries(shapes)) {
  test(`verify() stays linear in the file: ${name}`, () => {
    const text = make(20_000);
    const ms = fastest(text, 100);
    assert.ok(ms < 100, `${text.length} bytes took ${ms.toFixed(1)} ms`);
  });
}

test("the dedupe keeps the first line and removes every later duplicate", () => {
  const text = `${SECRET}\n" RATE_LIMIT 3 30\n" X\n" RATE_LIMIT 1 1\n" RATE_LIMIT\n" Y\n" DISALLOW_REUSE 5\n" TOTP_AUTH\n`;
  const r = verify(text, CODE, NOW, DEFAULT_POLICY, nodeMacFactory);
  assert.equal(r.next, `${SECRET}\n" RATE_LIMIT 3 30 ${NOW / 1000}\n" X\n" Y\n" DISALLOW_REUSE ${NOW / 30_000}\n" TOTP_AUTH\n`);
});
