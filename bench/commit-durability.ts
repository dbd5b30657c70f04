// What a state-file commit costs with each way of making it durable, on the file system of DIR
// (default: a temp directory under /var/tmp). Only "both" (fsync of the temp file, rename, fsync of
// the directory) is what otpgate does; the others are measured to show what each fsync costs.
// Run: node build/bench/commit-durability.js [DIR] [N]

import { closeSync, constants, fsyncSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

type Variant = "none" | "temp only" | "dir only" | "both (otpgate)" | "rename, then fsync the file";

const dir = process.argv[2] || mkdtempSync("/var/tmp/otpgate-bench-");
const n = Number(process.argv[3] ?? 200);
const path = join(dir, "ga");
const text = Buffer.from('JBSWY3DPEHPK3PXP\n" RATE_LIMIT 3 30 1700000000\n" WINDOW_SIZE 3\n" DISALLOW_REUSE 56666666\n" TOTP_AUTH\n' + "12345678\n".repeat(5));

function syncDir(): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  fsyncSync(fd);
  closeSync(fd);
}

function commit(variant: Variant): void {
  const tmp = `${path}~otpgate-locked`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  writeSync(fd, text);
  if (variant === "temp only" || variant === "both (otpgate)") fsyncSync(fd);
  if (variant === "rename, then fsync the file") {
    renameSync(tmp, path);
    fsyncSync(fd);
    closeSync(fd);
    return;
  }
  closeSync(fd);
  renameSync(tmp, path);
  if (variant === "dir only" || variant === "both (otpgate)") syncDir();
}

const variants: Variant[] = ["none", "temp only", "dir only", "both (otpgate)", "rename, then fsync the file"];
const times = new Map<Variant, number[]>(variants.map((v) => [v, []]));
for (let i = 0; i < n; i++) {
  for (const v of variants) {
    const t0 = process.hrtime.bigint();
    commit(v);
    times.get(v)!.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
console.log(`state-file commit, ${n} rounds (interleaved) in ${dir}:`);
for (const v of variants) console.log(`  ${v.padEnd(28)} p50 ${pct(times.get(v)!, 0.5).toFixed(3)} ms  p99 ${pct(times.get(v)!, 0.99).toFixed(3)} ms`);
if (!process.argv[2]) rmSync(dir, { recursive: true, force: true });
