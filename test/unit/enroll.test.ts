import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeGaSecret } from "../../src/core/base32.js";
import { drawCredentials, enrollmentText, generateScratchCodes, groupSecret, keyUriFor } from "../../src/core/enroll.js";
import { renderQr, type ModuleGrid } from "../../src/core/qr-render.js";
import { replaceScratchCodes, scratchEntries } from "../../src/formats/ga-document.js";
import { parseEnrollFlags, windowFor } from "../../src/adapters/cli/commands/enroll-flags.js";
import { inkGrid } from "../helpers/qr-image.js";

/** A Random that plays back fixed bytes. */
function replay(...chunks: number[][]) {
  const queue = chunks.map((c) => Uint8Array.from(c));
  return {
    bytes: (n: number) => {
      const next = queue.shift()!;
      assert.equal(next.length, n);
      return next;
    },
  };
}

test("emergency codes: 4 bytes, big-endian, 31 bits, mod 10^8; below 10^7 and duplicates are drawn again", () => {
  const codes = generateScratchCodes(2, replay([0x80, 0x00, 0x00, 0x05], [0x00, 0x98, 0x96, 0x80], [0x3b, 0x9a, 0xca, 0x07], [0x00, 0x98, 0x96, 0x80], [0x00, 0x98, 0x96, 0x81]));
  // 0x80000005 & 0x7fffffff = 5 -> < 10^7, redrawn; 0x00989680 = 10000000 -> kept;
  // 0x3b9aca07 = 1000000007 % 10^8 = 7 -> redrawn; 10000000 again -> duplicate, redrawn; 10000001 kept
  assert.deepEqual(codes, [10000000, 10000001]);
});

test("credentials: a 160-bit secret (32 base32 characters) and N distinct 8-digit codes", () => {
  let n = 0;
  const counter = { bytes: (k: number) => Uint8Array.from({ length: k }, () => (n++ * 37 + 11) & 255) };
  const c = drawCredentials(10, counter);
  assert.match(c.secret, /^[A-Z2-7]{32}$/);
  assert.equal(decodeGaSecret(c.secret)!.length, 20);
  assert.equal(new Set(c.scratchCodes).size, 10);
  for (const code of c.scratchCodes) assert.ok(code >= 10_000_000 && code <= 99_999_999);
});

test("the state file follows google-authenticator's layout for the chosen answers", () => {
  const base = { mode: "totp", stepSeconds: undefined, algorithm: "SHA1", digits: 6 } as const;
  const creds = { secret: "ABCDEFGH", scratchCodes: [12345678, 23456789] };
  assert.equal(
    enrollmentText({ ...base, disallowReuse: true, windowSize: 17, rateLimit: { attempts: 3, intervalSeconds: 30 } }, creds),
    'ABCDEFGH\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 17\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n23456789\n',
  );
  assert.equal(enrollmentText({ ...base, mode: "hotp", disallowReuse: false, windowSize: undefined, rateLimit: undefined }, creds), 'ABCDEFGH\n" HOTP_COUNTER 1\n12345678\n23456789\n');
});

test("key URIs: the reference's form, plus the step when it is not 30 s and the counter for HOTP", () => {
  const s = { mode: "totp", label: "alice@host", issuer: "host", stepSeconds: undefined, algorithm: "SHA1", digits: 6 } as const;
  assert.equal(keyUriFor(s, "ABCD"), "otpauth://totp/alice@host?secret=ABCD&issuer=host");
  assert.equal(keyUriFor({ ...s, stepSeconds: 60, issuer: "" }, "ABCD"), "otpauth://totp/alice@host?secret=ABCD&period=60");
  assert.equal(keyUriFor({ ...s, mode: "hotp", algorithm: "SHA256", digits: 8 }, "ABCD"), "otpauth://hotp/alice@host?secret=ABCD&issuer=host&algorithm=SHA256&digits=8&counter=1");
  assert.equal(groupSecret("ABCDEFGHIJ"), "ABCD EFGH IJ");
});

test("flags: google-authenticator's meanings, and a clear message for every bad value", () => {
  const f = parseEnrollFlags(["-t", "-d", "-f", "-r", "3", "-R", "30", "-W", "-e", "7", "-Q", "ansi-inverse", "-C", "-C", "--user", "bob"]);
  assert.equal(f.mode, "totp");
  assert.equal(f.reuse, "disallow");
  assert.deepEqual(f.rateLimit, { attempts: 3, intervalSeconds: 30 });
  assert.equal(f.window, "minimal");
  assert.equal(f.emergencyCodes, 7);
  assert.equal(f.qrMode, "ANSI_INVERSE");
  assert.equal(f.confirm, false);
  assert.equal(f.user, "bob");
  assert.equal(parseEnrollFlags(["-u"]).rateLimit, null);
  assert.equal(parseEnrollFlags(["-r3", "--rate-time=20"]).rateLimit?.attempts, 3);
  const bad: [string[], RegExp][] = [
    [["-r", "0", "-R", "30"], /-r requires an argument in the range 1\.\.10, not "0"/],
    [["-r", "3"], /Must set -r when setting -R, and vice versa/],
    [["-R", "5", "-r", "3"], /-R requires an argument in the range 15\.\.600/],
    [["-u", "-r", "3", "-R", "30"], /-u \(no rate limit\) cannot be combined/],
    [["-e", "99"], /-e requires an argument in the range 0\.\.10, not "99"/],
    [["-S", "7"], /-S 7: authenticator apps make a new code every 30 seconds.*use -S 30 or -S 60/],
    [["-S", "0"], /-S requires an argument in the range 1\.\.60/],
    [["-w", "22"], /-w requires an argument in the range 1\.\.21/],
    [["-t", "-c"], /Duplicate -c and\/or -t option detected/],
    [["-w", "3", "-W"], /Duplicate -w\/-W option detected/],
    [["-e", "1", "-e", "2"], /Duplicate -e option detected/],
    [["-d"], /Must select time-based mode, when using -d or -D/],
    [["-c", "-D"], /Reuse of tokens is not a meaningful parameter in counter-based mode/],
    [["-Q", "COLOR"], /Invalid qr-mode "COLOR"/],
    [["--algorithm", "MD5"], /--algorithm must be SHA1, SHA256 or SHA512/],
    [["--digits", "9"], /--digits requires an argument in the range 6\.\.8/],
    [["--bogus"], /Unknown option '--bogus'; see otpgate enroll --help/],
    [["extra"], /unexpected argument "extra"/],
  ];
  for (const [argv, message] of bad) assert.throws(() => parseEnrollFlags(argv), message, argv.join(" "));
  assert.throws(() => windowFor("totp", 1), /-w 1: a time-based window below 3 refuses a correct code/);
  assert.equal(windowFor("hotp", 1), 1);
  assert.equal(windowFor("hotp", "minimal"), 1);
  assert.equal(windowFor("totp", "minimal"), 3);
});

test("QR rendering: UTF8 packs two rows per line, ANSI uses reverse video; both parse back to the modules", () => {
  const pattern = [
    [1, 0, 1],
    [0, 1, 0],
    [1, 1, 0],
  ];
  const grid: ModuleGrid = { size: 3, isDark: (r, c) => pattern[r]![c] === 1 };
  for (const mode of ["UTF8", "ANSI"] as const) {
    const ink = inkGrid(renderQr(grid, mode), mode);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) assert.equal(ink[r + 2]![c + 2], pattern[r]![c] === 0, `${mode} ${r},${c}: light modules are ink`);
    assert.equal(ink[0]![0], true, "the quiet zone is light");
    const inverse = inkGrid(renderQr(grid, `${mode}_INVERSE`), mode);
    assert.equal(inverse[2]![2], true, "inverse draws dark modules");
  }
});

test("replacing emergency codes keeps every other line", () => {
  const text = 'S\n" RATE_LIMIT 3 30 1\n" TOTP_AUTH\n11111111\n22222222\n';
  const next = replaceScratchCodes(text, [33333333, 44444444, 55555555]);
  assert.equal(next, 'S\n" RATE_LIMIT 3 30 1\n" TOTP_AUTH\n33333333\n44444444\n55555555\n');
  assert.deepEqual(
    scratchEntries(replaceScratchCodes("S", [12345678])).map((e) => e.code),
    [12345678],
  );
});

test("PAM text validation: syntax and installed modules", async () => {
  const { validatePamText } = await import("../../src/admin/setup/plan.js");
  const has = (m: string) => ["pam_exec.so", "pam_deny.so", "pam_permit.so"].includes(m);
  assert.equal(validatePamText("# c\n@include common-account\nauth [success=1 ignore=1 default=ignore] pam_exec.so quiet /x pam\nauth requisite pam_deny.so\n", has), null);
  assert.match(validatePamText("auth\n", has)!, /invalid line: "auth"/);
  assert.match(validatePamText("auth required pam_nothere.so\n", has)!, /uses pam_nothere\.so, which is not installed/);
});
