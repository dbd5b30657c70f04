// otpgate db import's plan and merge (issue 11): fixed inputs, no database.
import assert from "node:assert/strict";
import { test } from "node:test";
import { codeShape, mergeStateTexts, secretIdentity } from "../../src/formats/ga-merge.js";
import { countPlan, describeStep, planImport, type ImportCopy } from "../../src/services/import-plan.js";
import { getOption, scratchEntries } from "../../src/formats/ga-document.js";

const A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const B = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const totp = (secret: string, extra: string, codes: readonly number[]) =>
  `${secret}\n" RATE_LIMIT 3 30${extra}\n" WINDOW_SIZE 3\n" DISALLOW_REUSE ${"$STEPS"}\n" TOTP_AUTH\n${codes.map((c) => `${c}\n`).join("")}`;
const file = (secret: string, steps: string, codes: readonly number[], stamps = "") => totp(secret, stamps, codes).replace("$STEPS", steps);

test("secretIdentity compares decoded secrets (case and spacing do not matter), null for a bad line 1", () => {
  assert.equal(secretIdentity(`${A}\n`), secretIdentity(`${A.toLowerCase()}\n`));
  assert.notEqual(secretIdentity(`${A}\n`), secretIdentity(`${B}\n`));
  assert.equal(secretIdentity("not base32!\n"), null);
});

test("merge: union of used steps, intersection of emergency codes, union of rate-limit stamps (newest kept)", () => {
  const h1 = file(A, "100 101", [11111111, 22222222, 33333333], " 1000 1010");
  const h2 = file(A, "101 105", [22222222, 33333333, 44444444], " 1020");
  const m = mergeStateTexts([h1, h2]);
  assert.equal(getOption(m.text, "DISALLOW_REUSE"), "100 101 105");
  assert.deepEqual(
    scratchEntries(m.text).map((e) => e.code),
    [22222222, 33333333],
  );
  assert.equal(m.scratchCodesDropped, 1);
  assert.equal(getOption(m.text, "RATE_LIMIT"), "3 30 1000 1010 1020");
  assert.equal(m.text.split("\n")[0], A, "the secret line is the base's");
});

test("merge: DISALLOW_REUSE is kept when any copy has it; HOTP takes the highest counter", () => {
  const withReuse = `${A}\n" DISALLOW_REUSE 7\n" TOTP_AUTH\n`;
  const without = `${A}\n" TOTP_AUTH\n`;
  assert.equal(getOption(mergeStateTexts([without, withReuse]).text, "DISALLOW_REUSE"), "7");
  const h = (n: number) => `${A}\n" HOTP_COUNTER ${n}\n12345678\n`;
  assert.equal(getOption(mergeStateTexts([h(4), h(9), h(2)]).text, "HOTP_COUNTER"), "9");
});

test("codeShape tells time- from counter-based and the step", () => {
  assert.notEqual(codeShape(`${A}\n" TOTP_AUTH\n`), codeShape(`${A}\n" HOTP_COUNTER 1\n`));
  assert.notEqual(codeShape(`${A}\n" TOTP_AUTH\n`), codeShape(`${A}\n" STEP_SIZE 60\n" TOTP_AUTH\n`));
});

const copy = (host: string, user: string, text: string): ImportCopy => ({ host, user, text });

test("plan: different secrets on two hosts are a conflict, reported by host name only, nothing imported", () => {
  const plan = planImport({ copies: [copy("h1", "alice", file(A, "1", [11111111])), copy("h2", "alice", file(B, "1", [11111111]))], existing: new Map() });
  assert.equal(plan.steps.length, 1);
  const step = plan.steps[0]!;
  assert.equal(step.kind, "conflict");
  const line = describeStep(step, false);
  assert.match(line, /^alice: CONFLICT: different secrets on h1, h2; skipped \(choose the one that wins with --prefer HOST\)$/);
  assert.ok(!line.includes(A) && !line.includes(B), "no secret in the report");
  assert.deepEqual(countPlan(plan.steps), { imported: 0, merged: 0, skipped: 0, conflicts: 1 });
});

test("plan: --prefer picks the host's secret; a --prefer that is not among them stays a conflict", () => {
  const copies = [copy("h1", "alice", file(A, "1", [11111111])), copy("h2", "alice", file(B, "2", [11111111])), copy("h3", "alice", file(B, "3", [11111111]))];
  const plan = planImport({ copies, prefer: "h3", existing: new Map() });
  const step = plan.steps[0]!;
  assert.equal(step.kind, "import");
  if (step.kind !== "import") return;
  assert.deepEqual(step.hosts, ["h3", "h2"], "the preferred copy is the base, merged with the same secret's copies");
  assert.deepEqual(step.overruled, ["h1"]);
  assert.equal(secretIdentity(step.text), secretIdentity(`${B}\n`));
  assert.equal(getOption(step.text, "DISALLOW_REUSE"), "2 3");
  assert.equal(planImport({ copies, prefer: "elsewhere", existing: new Map() }).steps[0]!.kind, "conflict");
});

test("plan: the same secret with different code settings is a conflict", () => {
  const plan = planImport({ copies: [copy("h1", "bob", `${A}\n" TOTP_AUTH\n`), copy("h2", "bob", `${A}\n" HOTP_COUNTER 3\n`)], existing: new Map() });
  assert.equal(plan.steps[0]!.kind, "conflict");
  assert.match(describeStep(plan.steps[0]!, false), /different code settings/);
});

test("plan: an account in the database with another secret is a conflict unless --replace; the same secret is skipped", () => {
  const copies = [copy("h1", "carol", file(A, "1", [11111111]))];
  const other = new Map([["carol", secretIdentity(`${B}\n`)]]);
  assert.equal(planImport({ copies, existing: other }).steps[0]!.kind, "conflict");
  const replaced = planImport({ copies, existing: other, replace: true }).steps[0]!;
  assert.ok(replaced.kind === "import" && replaced.mode === "replace");
  const same = planImport({ copies, existing: new Map([["carol", secretIdentity(`${A}\n`)]]) }).steps[0]!;
  assert.equal(same.kind, "skip");
  assert.deepEqual(countPlan([same]), { imported: 0, merged: 0, skipped: 1, conflicts: 0 });
});

test("plan: an unreadable copy of a user stops that user's import (it may hold the newest state), others go ahead", () => {
  const plan = planImport({
    copies: [copy("h1", "dave", file(A, "1", [11111111])), copy("h1", "erin", file(B, "1", [11111111])), copy("h2", "frank", "garbage!\n")],
    failures: [{ host: "h2", user: "dave", problem: "owned by uid 5, not root" }],
    existing: new Map(),
  });
  assert.deepEqual(
    plan.steps.map((s) => [s.user, s.kind]),
    [
      ["dave", "conflict"],
      ["erin", "import"],
      ["frank", "conflict"],
    ],
  );
  assert.match(describeStep(plan.steps[0]!, false), /unusable file \(h2: owned by uid 5, not root\)/);
  assert.match(describeStep(plan.steps[1]!, true), /^erin: would import from h1$/);
});
