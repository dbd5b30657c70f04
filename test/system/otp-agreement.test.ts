// The RFC core agrees with two independent implementations from Debian: oathtool (C, liboath) and
// python3-pyotp, on random secrets, times, counters, algorithms, digit counts and steps.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { test } from "node:test";
import { base32Encode } from "../../src/core/base32.js";
import { hotp, totp, type Algorithm } from "../../src/core/otp.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { sh, systemReady } from "../helpers/system.js";

interface Case {
  readonly secret: string;
  readonly key: Uint8Array;
  readonly algorithm: Algorithm;
  readonly digits: number;
  readonly step: number;
  readonly time: number;
  readonly counter: number;
}

function randomCases(n: number): Case[] {
  return Array.from({ length: n }, () => {
    const key = randomBytes(randomInt(10, 65));
    return {
      secret: base32Encode(key),
      key,
      algorithm: (["SHA1", "SHA256", "SHA512"] as const)[randomInt(3)]!,
      digits: randomInt(6, 9),
      step: [15, 30, 60, 90][randomInt(4)]!,
      time: randomInt(0, 2 ** 31 - 1) + (randomInt(2) ? 2 ** 32 : 0),
      counter: randomInt(0, 2 ** 40),
    };
  });
}

test("TOTP and HOTP agree with oathtool on random inputs", (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const cases = randomCases(60);
  for (const c of cases) {
    const alg = c.algorithm.toLowerCase();
    const theirsTotp = sh("oathtool", [`--totp=${alg}`, `--digits=${c.digits}`, `--time-step-size=${c.step}`, "-N", `@${c.time}`, "-b", c.secret]).trim();
    const ours = totp(c.key, c.time * 1000, { algorithm: c.algorithm, digits: c.digits, stepSeconds: c.step }, nodeMacFactory);
    assert.equal(ours, theirsTotp, `TOTP ${JSON.stringify({ ...c, key: undefined })}`);
    if (c.algorithm === "SHA1") {
      const theirsHotp = sh("oathtool", ["--hotp", `--digits=${c.digits}`, "-c", String(c.counter), "-b", c.secret]).trim();
      assert.equal(hotp(c.key, c.counter, { algorithm: "SHA1", digits: c.digits }, nodeMacFactory), theirsHotp, `HOTP counter ${c.counter}`);
    }
  }
  t.diagnostic(`${cases.length} random cases agree with oathtool`);
});

test("TOTP and HOTP agree with python3-pyotp on random inputs", (t) => {
  if (!systemReady(t, ["python3-pyotp"])) return;
  const cases = randomCases(300);
  const script = `
import hashlib, json, sys, pyotp
out = []
for c in json.load(sys.stdin):
    d = getattr(hashlib, c["algorithm"].lower())
    out.append([pyotp.TOTP(c["secret"], digits=c["digits"], digest=d, interval=c["step"]).at(c["time"]),
                pyotp.HOTP(c["secret"], digits=c["digits"], digest=d).at(c["counter"])])
print(json.dumps(out))`;
  const r = spawnSync("/usr/bin/python3", ["-c", script], { input: JSON.stringify(cases.map((c) => ({ ...c, key: undefined }))), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout) as [string, string][];
  cases.forEach((c, i) => {
    const params = { algorithm: c.algorithm, digits: c.digits };
    assert.equal(totp(c.key, c.time * 1000, { ...params, stepSeconds: c.step }, nodeMacFactory), theirs[i]![0], `TOTP case ${i}`);
    assert.equal(hotp(c.key, c.counter, params, nodeMacFactory), theirs[i]![1], `HOTP case ${i}`);
  });
  t.diagnostic(`${cases.length} random cases agree with pyotp`);
});
