// npm run bench: otpgate against the reference in the same run.
//  1. In-process decisions per second (verify(), SHA1, window 3).
//  2. Whole process, clean environment (as pam_exec runs it): `otpgate verify` vs `node -e 0` and vs
//     pamtester + pam_google_authenticator.so on the same kind of file; medians of interleaved runs.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_POLICY, verify } from "../src/core/verify.js";
import { nodeMacFactory } from "../src/platform/mac.js";
import { codeAt } from "../test/helpers/otp.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(ROOT, "dist/otpgate.cjs");
const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
const RUNS = Number(process.env.BENCH_RUNS ?? 30);

function perSecond(label: string, text: string, entry: (i: number) => string, policy = DEFAULT_POLICY, ms = 1500): number {
  const now = 1_700_000_000_000;
  for (let i = 0; i < 2000; i++) verify(text, entry(i), now, policy, nodeMacFactory);
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 1000; i++) verify(text, entry(n + i), now, policy, nodeMacFactory);
    n += 1000;
    elapsed = performance.now() - start;
  }
  const rate = (n / elapsed) * 1000;
  console.log(`  ${label.padEnd(58)} ${Math.round(rate).toLocaleString("en-US").padStart(10)} /s`);
  return rate;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Cmd {
  readonly label: string;
  readonly argv: string[];
  readonly input?: string;
  readonly before?: () => void;
  readonly times: number[];
}

function timeAll(cmds: Cmd[]): void {
  for (const c of cmds) for (let i = 0; i < 3; i++) spawnSync(c.argv[0]!, c.argv.slice(1), { env: {}, input: c.input ?? "" });
  for (let r = 0; r < RUNS; r++) {
    for (const c of cmds) {
      c.before?.();
      const t0 = process.hrtime.bigint();
      const res = spawnSync(c.argv[0]!, c.argv.slice(1), { env: {}, input: c.input ?? "", stdio: ["pipe", "ignore", "ignore"] });
      c.times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (res.error) throw res.error;
    }
  }
}

function show(cmds: Cmd[], base: Cmd): void {
  for (const c of cmds) {
    const m = median(c.times);
    console.log(`  ${c.label.padEnd(58)} ${m.toFixed(1).padStart(7)} ms   ${(m / median(base.times)).toFixed(2)}x ${base.label}`);
  }
}

console.log(`otpgate benchmark (node ${process.version}, ${RUNS} interleaved runs per command, clean environment)\n`);
console.log("1. In-process decisions (verify(): parse, rate limit, code check, edit; SHA1, window 3)");
const plain = `${SECRET}\n" WINDOW_SIZE 3\n" TOTP_AUTH\n`;
const typical = `${SECRET}\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n23456789\n34567890\n45678901\n56789012\n`;
const good = codeAt(SECRET, Math.floor(1_700_000_000 / 30));
const noSkew = { ...DEFAULT_POLICY, noSkewAdjust: true };
const accepted = perSecond("accepted code, plain file", plain, () => good);
perSecond("accepted code, typical file (rate limit, reuse, 5 codes)", typical.replace("3 30", "100 3600"), () => good);
const wrong = perSecond("wrong code, noskewadj", plain, (i) => String(100000 + (i % 800000)), noSkew);
perSecond("wrong code with the ±1499-step skew search (default)", plain, (i) => String(100000 + (i % 800000)), DEFAULT_POLICY, 800);
console.log(`  target >= 150,000/s: ${accepted >= 150_000 && wrong >= 150_000 ? "met" : "NOT met"}`);

const dir = mkdtempSync(join(tmpdir(), "otpgate-bench-"));
const service = `otpgate-bench-${process.pid}`;
const pamFile = join("/etc/pam.d", service);
const canPam = process.geteuid?.() === 0 && existsSync("/usr/bin/pamtester") && existsSync("/lib/x86_64-linux-gnu/security/pam_google_authenticator.so");
try {
  console.log("\n2. Whole process, median wall time (env -i equivalent: empty environment)");
  const node = process.execPath;
  const fileA = join(dir, "accept.ga");
  const fileR = join(dir, "ref.ga");
  const fileW = join(dir, "write.ga");
  const fileWR = join(dir, "write-ref.ga");
  const wrongFile = `${SECRET}\n" RATE_LIMIT 100 3600\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  for (const [f, t] of [[fileA, plain], [fileR, plain], [fileW, wrongFile], [fileWR, wrongFile]] as const) writeFileSync(f, t, { mode: 0o400 });
  const now = () => codeAt(SECRET, Math.floor(Date.now() / 30000));
  const base: Cmd = { label: "node -e 0", argv: [node, "-e", "0"], times: [] };
  const accept: Cmd = { label: "otpgate verify (accepted, no write)", argv: [node, CLI, "verify", "-s", fileA, now()], times: [] };
  const write: Cmd = { label: "otpgate verify (wrong code, state written + fsync)", argv: [node, CLI, "verify", "--no-skew-adjust", "-s", fileW, "000000"], times: [] };
  const cmds = [base, accept, write];
  let refAccept: Cmd | null = null;
  let refWrite: Cmd | null = null;
  if (canPam) {
    writeFileSync(pamFile, `auth required pam_google_authenticator.so secret=${dir}/\${USER}.ga user=root noskewadj\n`);
    // pamtester's user name selects the file through secret=${USER}
    refAccept = { label: "pamtester + pam_google_authenticator.so (accepted)", argv: ["/usr/bin/pamtester", service, "ref", "authenticate"], input: now() + "\n", times: [] };
    refWrite = { label: "pamtester + pam_google_authenticator.so (wrong, written)", argv: ["/usr/bin/pamtester", service, "write-ref", "authenticate"], input: "000000\n", times: [] };
    cmds.push(refAccept, refWrite);
  } else {
    console.log("  (pamtester comparison skipped: needs root and scripts/install-test-deps.sh)");
  }
  timeAll(cmds);
  show(cmds, base);
  const ratio = median(accept.times) / median(base.times);
  console.log(`\n  otpgate verify / node -e 0: ${ratio.toFixed(2)}x (target <= 1.25x): ${ratio <= 1.25 ? "met" : "NOT met"}`);
  if (refAccept && refWrite) {
    console.log(`  otpgate verify / pamtester+module, accepted: ${(median(accept.times) / median(refAccept.times)).toFixed(2)}x`);
    console.log(`  otpgate verify / pamtester+module, wrong code with write: ${(median(write.times) / median(refWrite.times)).toFixed(2)}x`);
  }
  console.log("\n  commands (run with an empty environment):");
  for (const c of cmds) console.log(`    ${c.input ? `printf '%s\\n' CODE | ` : ""}${c.argv.join(" ")}`);
} finally {
  if (existsSync(pamFile)) unlinkSync(pamFile);
  rmSync(dir, { recursive: true, force: true });
}
