// npm test: build, run the unit tests, then the system tests (real PAM module, pamtester, oathtool,
// pyotp, faketime), and print one summary line. System tests need root and the Debian packages from
// scripts/install-test-deps.sh; without them they skip loudly, and with REQUIRE_SYSTEM_TESTS=1 (CI)
// a skip is a failure. Before anything else: the formatter's check (prettier, .prettierrc.json), once
// FORMAT_CHECK is on.
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const which = process.argv[2] ?? "all";
const suites = which === "all" ? ["unit", "system"] : [which];
if (!suites.every((s) => s === "unit" || s === "system")) {
  console.error("usage: node scripts/test.mjs [unit|system]");
  process.exit(2);
}

// The formatter's check runs first and fails the run: `npm run format` fixes what it reports.
// OTPGATE_FORMAT_CHECK=0 skips it (a quick local loop); CI always runs it.
const FORMAT_CHECK = true;
const formatCheck = process.env.OTPGATE_FORMAT_CHECK === undefined ? FORMAT_CHECK : process.env.OTPGATE_FORMAT_CHECK === "1";
if (formatCheck) {
  const prettier = spawnSync(process.execPath, ["node_modules/prettier/bin/prettier.cjs", "--check", "--log-level=warn", "src", "test", "scripts", "bench"], { stdio: "inherit" });
  if (prettier.status !== 0) {
    console.error(
      "\nformat check failed: the files listed above are not formatted as prettier (.prettierrc.json) formats them.\nRun `npm run format` to fix them, review the diff, and commit it; then run npm test again.",
    );
    process.exit(1);
  }
}

const build = spawnSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

// otpgate refuses to be run as root from a place anyone but root can change (setup, doctor: like
// sshd's StrictModes), and a checkout may live anywhere (/tmp, a home). As root, the system tests
// therefore use a copy of the build in a fresh root-only directory (/var/lib/otpgate-test-*), as
// an installation from a tarball would be; it is removed at the end.
let trusted = null;
if (process.geteuid?.() === 0) {
  trusted = mkdtempSync("/var/lib/otpgate-test-");
  chmodSync(trusted, 0o755);
  const pkg = join(trusted, "otpgate");
  cpSync("dist", join(pkg, "dist"), { recursive: true });
  cpSync("package.json", join(pkg, "package.json"));
  cpSync("node_modules/@node-rs", join(pkg, "node_modules/@node-rs"), { recursive: true, dereference: true });
  for (const args of [["-R", "root:root", pkg]]) spawnSync("chown", args, { stdio: "inherit" });
  spawnSync("chmod", ["-R", "go-w", pkg], { stdio: "inherit" });
}

const totals = { pass: 0, fail: 0, skipped: 0, cancelled: 0 };
const tmp = mkdtempSync(join(tmpdir(), "otpgate-tap-"));
let failedRun = false;
for (const suite of suites) {
  console.log(`\n== ${suite} tests ==`);
  const tap = join(tmp, `${suite}.tap`);
  const args = ["--test", "--test-reporter=spec", "--test-reporter-destination=stdout", "--test-reporter=tap", `--test-reporter-destination=${tap}`];
  if (suite === "system") args.push("--test-concurrency=1");
  args.push(`build/test/${suite}/`);
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS; // it triples Node's start-up and is not needed offline
  if (trusted) env.OTPGATE_TEST_TRUSTED = trusted;
  const r = spawnSync(process.execPath, args, { stdio: "inherit", env });
  if (r.status !== 0) failedRun = true;
  const text = readFileSync(tap, "utf8");
  for (const key of Object.keys(totals)) {
    const m = new RegExp(`^# ${key} (\\d+)$`, "m").exec(text);
    if (m) totals[key] += Number(m[1]);
  }
}
rmSync(tmp, { recursive: true, force: true });
if (trusted) rmSync(trusted, { recursive: true, force: true });
const failed = totals.fail + totals.cancelled;
console.log(`\ntests: ${totals.pass} passed, ${failed} failed, ${totals.skipped} skipped`);
process.exit(failed > 0 || failedRun ? 1 : 0);
