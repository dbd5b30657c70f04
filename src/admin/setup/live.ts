// What makes a new login configuration live, and the proof that it works: a test login through
// the new PAM stack (pamtester, under a throwaway service name), and sshd's reload (SIGHUP to the
// sshd that the configuration's PidFile names, after checking that it is that sshd).

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readlinkSync, realpathSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const PAMTESTER = "/usr/bin/pamtester";

export interface TestLogin {
  readonly pamText: string;
  readonly user: string;
  /** What the user types at the prompt (a code, or password + code). */
  readonly answer: string;
  /** PAM environment sshd would provide (SSH_AUTH_INFO_0 after the key step). */
  readonly env: readonly string[];
}

/**
 * One login through the new stack. The stack is installed for the duration under a unique
 * service name in /etc/pam.d (the real one is not touched) and removed again. Uses the code.
 */
export function testLogin(t: TestLogin): { ok: true } | { ok: false; why: string } {
  if (!existsSync(PAMTESTER)) return { ok: false, why: `${PAMTESTER} is not installed (apt install pamtester); without it setup cannot try a login` };
  const service = `otpgate-test-login-${randomBytes(6).toString("hex")}`;
  const path = join("/etc/pam.d", service);
  writeFileSync(path, t.pamText, { mode: 0o644, flag: "wx" });
  try {
    const r = spawnSync(PAMTESTER, [...t.env.flatMap((e) => ["-E", e]), "-I", "rhost=127.0.0.1", service, t.user, "authenticate"], {
      input: t.answer + "\n",
      encoding: "utf8",
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      timeout: 30_000,
    });
    if (r.status === 0) return { ok: true };
    const said = `${r.stdout}${r.stderr}`
      .split("\n")
      .filter((l) => /pamtester:/.test(l))
      .join(" ")
      .replace(/\s+/g, " ")
      .trim();
    return { ok: false, why: said || `pamtester exited with ${r.status ?? r.signal}` };
  } finally {
    unlinkSync(path);
  }
}

/** The PidFile sshd uses with this configuration (sshd -T), or null. */
function pidFileOf(sshd: string, config: string): string | null {
  const r = spawnSync(sshd, ["-T", "-f", config, "-C", "user=root,host=localhost,addr=127.0.0.1"], { encoding: "utf8" });
  return /^pidfile (\S+)$/m.exec(r.stdout)?.[1] ?? null;
}

/**
 * SIGHUP to the running sshd of this configuration: sshd re-executes itself and reads the new
 * settings (what `systemctl reload ssh` does). Refuses when the PidFile's process is not sshd.
 */
export function reloadSshd(sshd: string, config: string): { ok: true; pid: number } | { ok: false; why: string } {
  const pidFile = pidFileOf(sshd, config);
  if (!pidFile || !existsSync(pidFile)) return { ok: false, why: `no running sshd found (PidFile ${pidFile ?? "unknown"} does not exist); the new settings apply when sshd starts` };
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 1) return { ok: false, why: `${pidFile} does not hold a process id` };
  let exe: string;
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return { ok: false, why: `process ${pid} from ${pidFile} is not running; the new settings apply when sshd starts` };
  }
  if (exe !== realpathSync(sshd)) return { ok: false, why: `process ${pid} from ${pidFile} is ${exe}, not ${realpathSync(sshd)}; reload sshd yourself (systemctl reload ssh)` };
  process.kill(pid, "SIGHUP");
  return { ok: true, pid };
}
