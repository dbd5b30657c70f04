// System-test plumbing: decide whether the real components are available (root, Debian packages),
// fail instead of skipping when REQUIRE_SYSTEM_TESTS=1, and create throwaway PAM services, users and
// directories that are always removed again.

import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/**
 * A root-only directory for what root will run (scripts/test.mjs makes one under /var/lib when
 * run as root; the checkout itself may live where anyone can create names, like /tmp, and otpgate
 * refuses to be run as root from there). Falls back to the checkout's build/.
 */
export const TRUSTED_BASE = process.env.OTPGATE_TEST_TRUSTED ?? join(ROOT, "build");
/** The launcher the tests run: the trusted copy of dist/ when there is one. */
export const CLI = process.env.OTPGATE_TEST_TRUSTED ? join(process.env.OTPGATE_TEST_TRUSTED, "otpgate/dist/otpgate.cjs") : join(ROOT, "dist/otpgate.cjs");
export const PAM_MODULE = "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so";

const BINARIES: Record<string, string> = {
  pamtester: "/usr/bin/pamtester",
  oathtool: "/usr/bin/oathtool",
  faketime: "/usr/bin/faketime",
  "google-authenticator": "/usr/bin/google-authenticator",
  "pam_google_authenticator.so": PAM_MODULE,
  "python3-pyotp": "/usr/lib/python3/dist-packages/pyotp/__init__.py",
  zbarimg: "/usr/bin/zbarimg",
  nginx: "/usr/sbin/nginx",
  caddy: "/usr/bin/caddy",
  chromium: "/usr/bin/chromium",
  python3: "/usr/bin/python3",
  "python3-argon2": "/usr/lib/python3/dist-packages/argon2/__init__.py",
  openssl: "/usr/bin/openssl",
  nft: "/usr/sbin/nft",
  postgres: "/usr/lib/postgresql/15/bin/postgres",
  pgbench: "/usr/lib/postgresql/15/bin/pgbench",
  pam_radius_auth: "/lib/x86_64-linux-gnu/security/pam_radius_auth.so",
};

/** Skip loudly, or fail under REQUIRE_SYSTEM_TESTS=1, unless root and every dependency is there. */
export function systemReady(t: TestContext, needs: (keyof typeof BINARIES)[]): boolean {
  const missing = needs.filter((n) => !existsSync(BINARIES[n]!));
  const notRoot = process.geteuid?.() !== 0;
  if (missing.length === 0 && !notRoot) return true;
  const why = `${notRoot ? "not running as root" : ""}${notRoot && missing.length ? "; " : ""}${missing.length ? "missing " + missing.join(", ") + " (run scripts/install-test-deps.sh)" : ""}`;
  if (process.env.REQUIRE_SYSTEM_TESTS === "1") throw new Error(`system test cannot run: ${why}`);
  process.stderr.write(`\n*** SKIPPING system test "${t.name}": ${why} ***\n`);
  t.skip(why);
  return false;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export function tempDir(t: TestContext, prefix = "otpgate-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A PAM service file under a unique name, removed after the test. */
export function pamService(t: TestContext, lines: string[]): string {
  const name = uniqueName("otpgate-test");
  const path = join("/etc/pam.d", name);
  writeFileSync(path, lines.join("\n") + "\n", { mode: 0o644 });
  t.after(() => {
    try {
      unlinkSync(path);
    } catch {
      // already removed
    }
  });
  return name;
}

export function utcStamp(seconds: number): string {
  return new Date(seconds * 1000)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "");
}

/** Run pamtester authenticate with `entry` typed at the prompt, optionally at a frozen time. */
export function pamtester(service: string, user: string, entry: string, atSeconds?: number, items: string[] = []): { ok: boolean; out: string } {
  const argv = ["pamtester", ...items.flatMap((i) => ["-I", i]), service, user, "authenticate"];
  const cmd = atSeconds === undefined ? argv : ["faketime", "-f", utcStamp(atSeconds), ...argv];
  const r = spawnSync(cmd[0]!, cmd.slice(1), {
    input: entry + "\n",
    encoding: "utf8",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TZ: "UTC" },
    timeout: 20_000,
  });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** pamtester() without blocking: refusals whose time is not measured wait out their floors at once. */
export async function pamtesterAsync(service: string, user: string, entry: string, items: string[] = []): Promise<{ ok: boolean; out: string }> {
  const r = await spawnTimed("pamtester", [...items.flatMap((i) => ["-I", i]), service, user, "authenticate"], {
    input: entry + "\n",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TZ: "UTC" },
    timeoutMs: 20_000,
  });
  return { ok: r.status === 0, out: r.out };
}

/**
 * A process run without blocking this one (so several can wait out a refusal floor at once): its
 * exit status and its wall time from spawn to exit, in ms.
 */
export function spawnTimed(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ status: number | null; ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: opts.env ?? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, ms: Number(process.hrtime.bigint() - t0) / 1e6, out });
    });
    child.stdin.on("error", () => {}); // a process that exits before reading its input
    child.stdin.end(opts.input ?? "");
  });
}

export function runCli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], {
    input: opts.input ?? "",
    encoding: "utf8",
    env: opts.env ?? { PATH: "/usr/bin:/bin" },
    timeout: 30_000,
    ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid ?? opts.uid }),
  });
}

export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: input ?? "", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A throwaway local user with a home directory, deleted (with its home) after the test. */
export function throwawayUser(t: TestContext): { name: string; uid: number; gid: number; home: string } {
  const name = uniqueName("otpgt").slice(0, 14);
  sh("useradd", ["-m", "-s", "/bin/sh", name]);
  t.after(() => {
    spawnSync("userdel", ["-r", "-f", name], { stdio: "ignore" });
  });
  const [uid, gid, home] = sh("getent", ["passwd", name])
    .trim()
    .split(":")
    .filter((_, i) => [2, 3, 5].includes(i));
  return { name, uid: Number(uid), gid: Number(gid), home: home! };
}

/** The current TOTP code of a base32 secret, from oathtool (an independent implementation). */
export function oathTotp(secret: string, offsetSteps = 0): string {
  return sh("oathtool", ["--totp", "-b", secret, "-N", `@${Math.floor(Date.now() / 1000) + offsetSteps * 30}`]).trim();
}

export function oathHotp(secret: string, counter: number): string {
  return sh("oathtool", ["--hotp", "-c", String(counter), "-b", secret]).trim();
}

/** Run a command in a pseudo-terminal, answering prompts: steps are [regex, answer] pairs. */
export function ptyDrive(steps: [string, string][], argv: string[], env: NodeJS.ProcessEnv = { PATH: "/usr/bin:/bin", TERM: "dumb" }): { exit: number; output: string; failedStep: number | null } {
  const r = spawnSync("/usr/bin/python3", [join(ROOT, "test/helpers/pty_drive.py"), JSON.stringify(steps), "--", ...argv], { encoding: "utf8", env, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`pty driver failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { exit: number; output: string; failed_step: number | null };
  return { exit: out.exit, output: out.output, failedStep: out.failed_step };
}

export function zbarimg(pngPath: string): string {
  const r = spawnSync("zbarimg", ["--raw", "-q", pngPath], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`zbarimg could not decode ${pngPath} (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

/** A syslog socket for the test (a datagram listener in Python; Node cannot bind one). */
export function syslogListener(t: TestContext): { socket: string; lines(): string[] } {
  const dir = tempDir(t, "otpgate-log-");
  chmodSync(dir, 0o755);
  const socket = join(dir, "log.sock");
  const out = join(dir, "log.txt");
  const script = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(120)
os.chmod(sys.argv[1], 0o777)  # otpgate logs after switching to the user's uid, as to /dev/log
open(sys.argv[2], "a").close()
print("ready", flush=True)
while True:
    try: d = s.recv(65536)
    except Exception: break
    with open(sys.argv[2], "a") as f: f.write(d.decode("utf-8", "replace").replace("\\n", " ") + "\\n")
`;
  const child = spawn("/usr/bin/python3", ["-c", script, socket, out], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => child.kill("SIGKILL"));
  const deadline = Date.now() + 5000;
  while (!existsSync(out) && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
  return {
    socket,
    lines: () => {
      spawnSync("sleep", ["0.3"]); // logger runs detached; give it a moment
      return existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean) : [];
    },
  };
}

/** A throwaway user enrolled with `otpgate enroll -t -d -W -u -q`, and the secret of its state file. */
export function enrolledUser(t: TestContext): { user: ReturnType<typeof throwawayUser>; secret: string } {
  const user = throwawayUser(t);
  const r = runCli(["enroll", "--user", user.name, "-t", "-d", "-W", "-u", "-q"]);
  if (r.status !== 0) throw new Error(`otpgate enroll failed: ${r.stderr}`);
  const secret = readFileSync(join(user.home, ".google_authenticator"), "latin1").split("\n")[0]!;
  return { user, secret };
}
