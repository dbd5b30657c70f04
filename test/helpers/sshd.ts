// A private OpenSSH sshd for tests and benchmarks: own config, host key and port on 127.0.0.1, and
// its own PAM service name (sshd uses the basename of argv[0], so it runs through a symlink).
// It never touches /etc/pam.d/sshd or the machine's sshd.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync, chmodSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { ROOT, sh, uniqueName } from "./system.js";

export interface PrivateSshd {
  readonly root: string;
  readonly service: string;
  readonly port: number;
  readonly config: string;
  readonly sshd: string;
  readonly clientKey: string;
  /** Copy root/etc/pam.d/SERVICE to /etc/pam.d/SERVICE (what sshd actually reads). */
  installPam(): void;
  start(): Promise<void>;
  stop(): void;
  /** What sshd wrote to stderr so far. */
  log(): string;
  /** Log in with key + keyboard-interactive answer. */
  /**
   * Log in with key + keyboard-interactive answer; `noKey` skips the key; `password` uses the
   * "password" method (with ANSWER as the password) instead of keyboard-interactive.
   */
  login(user: string, answer: string, options?: { noKey?: boolean; password?: boolean }): { ok: boolean; stage: string; prompts: string[][]; error?: string };
  /** SIGHUP: sshd re-reads its configuration (as `systemctl reload ssh` does). */
  reload(): Promise<void>;
  authorize(user: { name: string; uid: number; gid: number; home: string }): void;
  cleanup(): void;
}

const BASE_CONFIG = (root: string, port: number) => `# test sshd, like Debian's: drop-ins first, keyboard-interactive off
Include ${root}/etc/ssh/sshd_config.d/*.conf
Port ${port}
ListenAddress 127.0.0.1
HostKey ${root}/etc/ssh/ssh_host_ed25519_key
PidFile ${root}/run/sshd.pid
KbdInteractiveAuthentication no
UsePAM yes
PermitRootLogin no
AuthorizedKeysFile .ssh/authorized_keys
PrintMotd no
LogLevel VERBOSE
Subsystem sftp internal-sftp
`;

/** Wait (10 s at most) until 127.0.0.1:port accepts connections; `gaveUp` ends the wait early. */
async function waitUntilListening(port: number, gaveUp: () => boolean, failure: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline || gaveUp()) throw new Error(failure());
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function privateSshd(dir: string): PrivateSshd {
  const root = join(dir, "root");
  const service = uniqueName("otpgate-sshd");
  let port = 20000 + Math.floor(Math.random() * 20000);
  mkdirSync(join(root, "etc/ssh/sshd_config.d"), { recursive: true });
  mkdirSync(join(root, "etc/pam.d"), { recursive: true });
  mkdirSync(join(root, "run"), { recursive: true });
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(root, "etc/ssh/ssh_host_ed25519_key")]);
  const clientKey = join(dir, "client_key");
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", clientKey]);
  const config = join(root, "etc/ssh/sshd_config");
  writeFileSync(config, BASE_CONFIG(root, port));
  copyFileSync("/etc/pam.d/sshd", join(root, "etc/pam.d", service));
  const sshd = join(dir, service);
  symlinkSync("/usr/sbin/sshd", sshd);
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  let child: ChildProcess | null = null;
  const logFile = join(dir, "sshd.log");
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  const pamFile = join("/etc/pam.d", service);
  return {
    root,
    service,
    get port() {
      return port;
    },
    config,
    sshd,
    clientKey,
    installPam() {
      copyFileSync(join(root, "etc/pam.d", service), pamFile);
    },
    async start() {
      // Logs go to a file: a pipe nobody drains (the caller may block in spawnSync) would fill
      // up and stall sshd.
      // A random port can be taken by another test's or process's server: try a few.
      for (let attempt = 1; ; attempt++) {
        child = spawn(sshd, ["-D", "-E", logFile, "-f", config], { stdio: "ignore" });
        const started = child;
        try {
          await waitUntilListening(
            port,
            () => started.exitCode !== null,
            () => `sshd did not start: ${log()}`,
          );
          return;
        } catch (err) {
          if (attempt >= 5 || !/Address already in use/.test((err as Error).message)) throw err;
          port = 20000 + Math.floor(Math.random() * 20000);
          writeFileSync(config, readFileSync(config, "utf8").replace(/^Port [0-9]+$/m, `Port ${port}`));
          writeFileSync(logFile, "");
        }
      }
    },
    log,
    async reload() {
      if (!child || child.exitCode !== null) throw new Error("sshd is not running");
      child.kill("SIGHUP");
      // sshd re-executes itself; wait until it accepts connections again.
      await new Promise((r) => setTimeout(r, 300));
      await waitUntilListening(
        port,
        () => false,
        () => `sshd did not come back after SIGHUP: ${log()}`,
      );
    },
    stop() {
      if (child && child.exitCode === null) child.kill("SIGTERM");
      child = null;
    },
    login(user, answer, options = {}) {
      const args = [join(ROOT, "test/helpers/ssh_login.py"), "127.0.0.1", String(port), user, clientKey, answer];
      if (options.noKey) args.push("--no-key");
      if (options.password) args.push("--password");
      const r = spawnSync("/usr/bin/python3", args, { encoding: "utf8", timeout: 60_000 });
      return JSON.parse(r.stdout) as { ok: boolean; stage: string; prompts: string[][]; error?: string };
    },
    authorize(user) {
      const ssh = join(user.home, ".ssh");
      mkdirSync(ssh, { recursive: true, mode: 0o700 });
      writeFileSync(join(ssh, "authorized_keys"), readFileSync(clientKey + ".pub"), { mode: 0o600 });
      sh("chown", ["-R", `${user.uid}:${user.gid}`, ssh]);
      chmodSync(ssh, 0o700);
    },
    cleanup() {
      this.stop();
      if (existsSync(pamFile)) unlinkSync(pamFile);
    },
  };
}
