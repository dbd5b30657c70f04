import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { KNOWN_OPTIONS, formatNewStateFile, parseStateFile, serializeStateFile, summarize, type NewStateSettings } from "../../src/formats/ga-file.js";
import { getOption, scratchEntries, secretLine } from "../../src/formats/ga-document.js";
import { readOtpKind, readRateLimit, readStepSize, readWindowSize } from "../../src/formats/ga-settings.js";
import { ROOT } from "../helpers/system.js";

const FIXTURES = join(ROOT, "test/fixtures/google-authenticator");
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith(".ga"));

test("fixtures written by the real google-authenticator tool round-trip byte for byte", () => {
  assert.ok(fixtures.length >= 10);
  for (const name of fixtures) {
    const text = readFileSync(join(FIXTURES, name), "latin1");
    assert.equal(serializeStateFile(parseStateFile(text)), text, name);
  }
});

test("otpgate's writer rebuilds every fixture from its settings, byte for byte", () => {
  for (const name of fixtures) {
    const text = readFileSync(join(FIXTURES, name), "latin1");
    const flags = readFileSync(join(FIXTURES, name.replace(/\.ga$/, ".flags")), "utf8");
    const kind = readOtpKind(text);
    assert.ok(!(kind instanceof Error) && kind.mode !== "none", name);
    const rate = readRateLimit(text);
    const settings: NewStateSettings = {
      secret: secretLine(text),
      mode: kind.mode as "totp" | "hotp",
      rateLimit: rate && !(rate instanceof Error) ? rate : undefined,
      windowSize: getOption(text, "WINDOW_SIZE") === null ? undefined : (readWindowSize(text) as number),
      stepSeconds: getOption(text, "STEP_SIZE") === null ? undefined : (readStepSize(text) as number),
      disallowReuse: getOption(text, "DISALLOW_REUSE") !== null,
      scratchCodes: scratchEntries(text).map((e) => e.code),
    };
    assert.equal(formatNewStateFile(settings), text, `${name} (${flags.trim()})`);
  }
});

test("the writer puts extension lines after the reference's and never writes TOTP_AUTH with them", () => {
  const text = formatNewStateFile({ secret: "ABCD", mode: "totp", algorithm: "SHA256", digits: 8, disallowReuse: true, scratchCodes: [12345678] });
  assert.equal(text, 'ABCD\n" DISALLOW_REUSE\n" OTPGATE_ALGORITHM SHA256\n" OTPGATE_DIGITS 8\n" OTPGATE_TOTP_AUTH\n12345678\n');
  assert.doesNotMatch(text, /" TOTP_AUTH/);
});

test("property: parse/serialize is the identity on any text, and lines are classified", () => {
  const chars = fc.constantFrom("A", "B", "2", "7", "1", "0", " ", "\t", "\r", "\n", '"', "-", "x", "9", "é");
  fc.assert(
    fc.property(fc.string({ unit: chars, maxLength: 200 }), (text) => {
      const parsed = parseStateFile(text);
      assert.equal(serializeStateFile(parsed), text);
      if (text.length > 0) assert.equal(parsed.lines[0]!.kind, "secret");
    }),
    { numRuns: 500 },
  );
});

test("summary: settings, emergency codes left and problems, and never the secret", () => {
  const s = summarize('JBSWY3DPEHPK3PXP\n" RATE_LIMIT 3 30 1 2\n" WINDOW_SIZE 17\n" DISALLOW_REUSE 5\n" FOO bar\n" TOTP_AUTH\n12345678\n23456789\n');
  assert.equal(s.secretValid, true);
  assert.equal(s.secretBits, 80);
  assert.equal(s.otp?.mode, "totp");
  assert.equal(s.windowSize, 17);
  assert.deepEqual(s.rateLimit, { attempts: 3, intervalSeconds: 30, stamps: [1, 2] });
  assert.equal(s.scratchCodesLeft, 2);
  assert.deepEqual(s.unknownOptions, ["FOO"]);
  assert.deepEqual(s.problems, []);
  assert.doesNotMatch(JSON.stringify(s), /JBSWY3DPEHPK3PXP/);
  const bad = summarize('!!\n" STEP_SIZE 0\n" TOTP_AUTH\nhello\n12345678\n');
  assert.equal(bad.secretValid, false);
  assert.equal(bad.scratchCodesLeft, 0);
  assert.equal(bad.problems.length, 3);
});

test("docs/state-file-format.md lists exactly the option lines the parser knows", () => {
  const doc = readFileSync(join(ROOT, "docs/state-file-format.md"), "utf8");
  const documented = new Set<string>();
  for (const m of doc.matchAll(/^\| `" ([A-Z0-9_]+)[^`]*`(?: … `" ([A-Z0-9_]+)`)?/gm)) {
    documented.add(m[1]!);
    if (m[2]) for (let i = 0; i <= 9; i++) documented.add(`LAST${i}`);
  }
  assert.deepEqual([...documented].sort(), [...KNOWN_OPTIONS].sort());
});
