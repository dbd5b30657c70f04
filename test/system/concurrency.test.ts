// Races and crashes, with real processes: many logins at once, and SIGKILL in the middle of updates.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { scratchEntries, secretLine } from "../../src/formats/ga-document.js";
import { summarize } from "../../src/formats/ga-file.js";
import { CLI, oathTotp, runCli, systemReady, tempDir } from "../helpers/system.js";

const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
const lines = (...l: string[]) => l.join("\n") + "\n";

function verifyAsync(path: string, code: string): { done: Promise<number | null>; kill(): void } {
  const child = spawn(process.execPath, [CLI, "verify", "-s", path, code], { stdio: "ignore", env: { PATH: "/usr/bin:/bin" } });
  return { done: new Promise((r) => child.on("exit", (code) => r(code))), kill: () => child.kill("SIGKILL") };
}

test("24 processes verifying the same valid code at once: exactly one is accepted", { timeout: 60_000 }, async (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const dir = tempDir(t);
  const path = join(dir, "ga");
  writeFileSync(path, lines(SECRET, '" DISALLOW_REUSE', '" TOTP_AUTH'), { mode: 0o400 });
  const code = oathTotp(SECRET);
  const exits = await Promise.all(Array.from({ length: 24 }, () => verifyAsync(path, code).done));
  assert.equal(exits.filter((e) => e === 0).length, 1, `exit codes: ${exits.join(" ")}`);
  assert.equal(exits.filter((e) => e === 1).length, 23);
  assert.deepEqual(readdirSync(dir), ["ga"], "no temp or lock files are left behind");
});

test("24 processes racing for the same emergency code: exactly one is accepted", { timeout: 60_000 }, async (t) => {
  if (!systemReady(t, [])) return;
  const dir = tempDir(t);
  const path = join(dir, "ga");
  writeFileSync(path, lines(SECRET, '" TOTP_AUTH', "12345678", "23456789"), { mode: 0o400 });
  const exits = await Promise.all(Array.from({ length: 24 }, () => verifyAsync(path, "12345678").done));
  assert.equal(exits.filter((e) => e === 0).length, 1, `exit codes: ${exits.join(" ")}`);
  assert.equal(readFileSync(path, "latin1"), lines(SECRET, '" TOTP_AUTH', "23456789"));
});

test("8 concurrent wrong codes against RATE_LIMIT 3 30: the right code is refused afterwards", { timeout: 60_000 }, async (t) => {
  if (!systemReady(t, ["oathtool"])) return;
  const dir = tempDir(t);
  const path = join(dir, "ga");
  writeFileSync(path, lines(SECRET, '" RATE_LIMIT 3 30', '" TOTP_AUTH'), { mode: 0o400 });
  const right = oathTotp(SECRET);
  const wrong = (i: number) => String((Number(right) + 1000 + i) % 1000000).padStart(6, "0");
  const exits = await Promise.all(Array.from({ length: 8 }, (_, i) => verifyAsync(path, wrong(i)).done));
  assert.deepEqual(exits, Array(8).fill(1));
  const stamps = /RATE_LIMIT 3 30((?: \d+)*)\n/.exec(readFileSync(path, "latin1"))![1]!.trim().split(" ");
  assert.equal(stamps.length, 3, "every attempt was recorded and the list is capped at 3");
  const r = runCli(["verify", "-s", path, "--json", right]);
  assert.equal(r.status, 1);
  assert.equal(JSON.parse(r.stdout).reason, "rate-limited");
});

test("SIGKILL at random moments during 45 updates: the file always stays valid and used codes never come back", { timeout: 120_000 }, async (t) => {
  if (!systemReady(t, [])) return;
  const dir = tempDir(t);
  const path = join(dir, "ga");
  const codes = Array.from({ length: 10 }, (_, i) => 10_000_000 + i * 8_765_431);
  const original = lines(SECRET, '" RATE_LIMIT 100 3600', '" DISALLOW_REUSE', '" TOTP_AUTH', ...codes.map(String));
  writeFileSync(path, original, { mode: 0o400 });
  let remaining = new Set(codes);
  const used = new Set<number>();
  let killed = 0;
  for (let i = 0; i < 45; i++) {
    const code = i % 3 === 0 ? String(codes[(i / 3) % codes.length]) : String(100000 + i);
    const run = verifyAsync(path, code);
    const delay = Math.floor(Math.random() * 70);
    const timer = setTimeout(() => {
      killed++;
      run.kill();
    }, delay);
    const exit = await run.done;
    clearTimeout(timer);
    if (exit === 0) used.add(Number(code));
    const text = readFileSync(path, "latin1");
    assert.equal(secretLine(text), SECRET, `update ${i}: the secret is intact`);
    assert.deepEqual(summarize(text).problems, [], `update ${i}: the file parses cleanly`);
    const now = new Set(scratchEntries(text).map((e) => e.code));
    for (const c of now) assert.ok(remaining.has(c), `update ${i}: emergency code ${c} came back`);
    for (const c of used) assert.ok(!now.has(c), `update ${i}: accepted code ${c} is still in the file`);
    remaining = now;
  }
  t.diagnostic(`${killed} of 45 verifications were killed with SIGKILL; ${used.size} emergency codes accepted`);
  assert.ok(killed > 5, "enough runs were actually killed");
  const last = runCli(["verify", "-s", path, "654321"]);
  assert.equal(last.status, 1);
  assert.deepEqual(readdirSync(dir), ["ga"], "temp files of killed writers are gone after the next update");
});
