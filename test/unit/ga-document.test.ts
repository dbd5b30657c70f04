import assert from "node:assert/strict";
import { test } from "node:test";
import { getOption, removeScratchEntry, scratchEntries, setOption } from "../../src/formats/ga-document.js";

test('getOption finds the first `" NAME` line, strips leading blanks, stops at CR/LF', () => {
  const text = 'S\n" RATE_LIMIT \t3 30\r\n" RATE_LIMIT 9 9\n" TOTP_AUTH\n';
  assert.equal(getOption(text, "RATE_LIMIT"), "3 30");
  assert.equal(getOption(text, "TOTP_AUTH"), "");
  assert.equal(getOption(text, "TOTP"), null, "a prefix of a name does not match");
  assert.equal(getOption('S\n"  WINDOW_SIZE 3\n', "WINDOW_SIZE"), null, "exactly one space after the quote");
});

test("setOption inserts new options right after line 1, before all others", () => {
  let text = "SECRET\n12345678\n";
  for (const key of ["DISALLOW_REUSE", "STEP_SIZE", "WINDOW_SIZE", "RATE_LIMIT"]) text = setOption(text, key, key === "DISALLOW_REUSE" ? "" : "1");
  assert.equal(text, 'SECRET\n" RATE_LIMIT 1\n" WINDOW_SIZE 1\n" STEP_SIZE 1\n" DISALLOW_REUSE \n12345678\n');
});

test("setOption replaces the line and the whole CR/LF run after it, and deletes later duplicates", () => {
  const text = 'S\r\n" WINDOW_SIZE 3\r\n\r\n\n" TOTP_AUTH\r\n" WINDOW_SIZE 5\r\n12345678\r\n';
  assert.equal(setOption(text, "WINDOW_SIZE", "17"), 'S\r\n" WINDOW_SIZE 17\n" TOTP_AUTH\r\n12345678\r\n');
});

test("an inserted option goes after the first line's CR/LF run; a file without a line break gets one", () => {
  assert.equal(setOption("S\r\n\n12345678\n", "TIME_SKEW", "-3"), 'S\r\n\n" TIME_SKEW -3\n12345678\n');
  assert.equal(setOption("SECRET", "RATE_LIMIT", "3 30 5"), 'SECRET\n" RATE_LIMIT 3 30 5\n');
});

test("scratch codes: 8 digits in range after line 1; blank and quote lines skipped; the scan stops at junk", () => {
  const text = 'S\n" TOTP_AUTH\n\n11111111\r\n09999999\n22222222\n';
  assert.deepEqual(
    scratchEntries(text).map((e) => e.code),
    [11111111],
  );
  const text2 = 'S\n12345678\n" X\n100000000\n';
  assert.deepEqual(
    scratchEntries(text2).map((e) => e.code),
    [12345678],
  );
  assert.deepEqual(
    scratchEntries("S\n12345678 \n").map((e) => e.code),
    [],
    "trailing space ends the scan",
  );
  assert.deepEqual(
    scratchEntries("S\n87654321").map((e) => e.code),
    [87654321],
    "end of file ends the last code",
  );
});

test("removing a scratch code deletes its line and the CR/LF run after it", () => {
  const text = 'S\n" TOTP_AUTH\n11111111\r\n\n22222222\n';
  const [first] = scratchEntries(text);
  assert.equal(removeScratchEntry(text, first!), 'S\n" TOTP_AUTH\n22222222\n');
});
