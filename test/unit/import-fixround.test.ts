// otpgate db import, fix round (red team rt1 F4, F7): fixed inputs, no database.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeStateTexts, secretIdentity } from "../../src/formats/ga-merge.js";
import { describeStep, planImport } from "../../src/services/import-plan.js";
import { getOption } from "../../src/formats/ga-document.js";

const A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const B = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

test("rt1 F4: --replace never overwrites an account that has the same secret (the database's used codes stay used)", () => {
  const old = `${A}\n" DISALLOW_REUSE 100\n" TOTP_AUTH\n11111111\n22222222\n33333333\n`;
  const plan = planImport({ copies: [{ host: "h1", user: "alice", text: old }], replace: true, existing: new Map([["alice", secretIdentity(`${A}\n`)]]) });
  assert.equal(plan.steps.length, 1);
  const step = plan.steps[0]!;
  assert.equal(step.kind, "skip", "the same secret is never written over the database's newer state");
  assert.match(describeStep(step, false), /^alice: skipped: already in the database with this secret; --replace is only for another secret/);
  // Another secret is still replaced.
  const other = planImport({ copies: [{ host: "h1", user: "bob", text: `${B}\n" TOTP_AUTH\n` }], replace: true, existing: new Map([["bob", secretIdentity(`${A}\n`)]]) });
  assert.equal(other.steps[0]!.kind, "import");
  assert.equal(other.steps[0]!.kind === "import" && other.steps[0]!.mode, "replace");
});

test("rt1 F4: without --replace the same secret is skipped and the message does not suggest --replace", () => {
  const plan = planImport({ copies: [{ host: "h1", user: "alice", text: `${A}\n" TOTP_AUTH\n` }], existing: new Map([["alice", secretIdentity(`${A}\n`)]]) });
  const line = describeStep(plan.steps[0]!, false);
  assert.equal(plan.steps[0]!.kind, "skip");
  assert.doesNotMatch(line, /--replace overwrites/);
});

test("rt1 F7: the merge takes the strictest rate limit and window of any copy, whichever host comes first", () => {
  const loose = `${A}\n" WINDOW_SIZE 17\n" TOTP_AUTH\n`;
  const strict = `${A}\n" RATE_LIMIT 3 30 1000\n" WINDOW_SIZE 5\n" TOTP_AUTH\n`;
  for (const order of [
    [loose, strict],
    [strict, loose],
  ]) {
    const m = mergeStateTexts(order);
    assert.equal(getOption(m.text, "RATE_LIMIT"), "3 30 1000", "a rate limit on any copy is kept");
    assert.equal(getOption(m.text, "WINDOW_SIZE"), "5", "the smallest window");
  }
  // Fewest attempts, longest interval (even from different copies); stamps of every copy.
  const a = `${A}\n" RATE_LIMIT 5 60 10 20\n" TOTP_AUTH\n`;
  const b = `${A}\n" RATE_LIMIT 2 30 30\n" TOTP_AUTH\n`;
  assert.equal(getOption(mergeStateTexts([a, b]).text, "RATE_LIMIT"), "2 60 20 30");
  // No WINDOW_SIZE line means the default 3, which is smaller than 17.
  assert.equal(getOption(mergeStateTexts([loose, `${A}\n" TOTP_AUTH\n`]).text, "WINDOW_SIZE"), "3");
  // One copy: unchanged.
  assert.equal(mergeStateTexts([loose]).text, loose);
});
