// Which PAM service files setup may write. setup rstudio writes a stack where the code replaces
// the password and sshd's key check is not required; setup ssh one that needs sshd's public-key
// step. Either one in a file that other logins use (sudo, su, login, a file other services
// include, the service the running sshd authenticates with) turns the code into their password
// or locks them out, so such targets are refused.

import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import { SetupError } from "./apply.js";
import { inRoot } from "./paths.js";

/** PAM services of the system's own logins (Debian, RHEL, Arch, SUSE), and the files they share. */
const SYSTEM_SERVICES = new Set([
  "sshd",
  "sudo",
  "sudo-i",
  "su",
  "su-l",
  "login",
  "passwd",
  "other",
  "chfn",
  "chsh",
  "chpasswd",
  "chage",
  "newusers",
  "cron",
  "crond",
  "atd",
  "runuser",
  "runuser-l",
  "polkit-1",
  "systemd-user",
  "systemd-run0",
  "remote",
  "rlogin",
  "rsh",
  "gdm-password",
  "gdm-autologin",
  "lightdm",
  "sddm",
  "xscreensaver",
  "kde",
  "cockpit",
  "vsftpd",
  "dovecot",
  "samba",
  "ppp",
  "system-auth",
  "password-auth",
  "system-login",
  "system-local-login",
  "system-remote-login",
  "system-services",
  "fingerprint-auth",
  "smartcard-auth",
  "postlogin",
  "config-util",
  "common-auth",
  "common-account",
  "common-password",
  "common-session",
  "common-session-noninteractive",
]);

/** Files in the PAM directory that include or substack `service` (otpgate's backups left out). */
export function includersOf(pamDir: string, service: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(pamDir);
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const name of names) {
    if (name === service || name.includes(".otpgate-backup-") || name.startsWith(".")) continue;
    let text: string;
    try {
      text = readFileSync(join(pamDir, name), "latin1");
    } catch {
      continue;
    }
    const uses = text.split("\n").some((raw) => {
      const w = raw.replace(/#.*/, "").trim().split(/\s+/);
      const target = w[0] === "@include" ? w[1] : /^-?(auth|account|password|session)$/i.test(w[0] ?? "") && /^(include|substack)$/.test(w[1] ?? "") ? w[2] : undefined;
      return target !== undefined && (target === service || target === join(pamDir, service) || target === join("/etc/pam.d", service));
    });
    if (uses) found.push(join(pamDir, name));
  }
  return found;
}

/** PAM service names of running sshd processes: sshd uses the name it was started under (argv[0]'s basename). */
export function runningSshdServices(sshdPaths: readonly string[]): string[] {
  const binaries = new Set(sshdPaths.filter((p) => existsSync(p)).map((p) => realpathSync(p)));
  const services = new Set<string>();
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  for (const pid of pids) {
    try {
      if (!binaries.has(readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ""))) continue;
      // sshd rewrites its title to "PROGNAME: ... [listener] ..." (and "PROGNAME: user [priv]" per session).
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0")[0] ?? "";
      const progname = /^([^:\s]+):\s/.exec(argv0)?.[1] ?? argv0.split(" ")[0] ?? "";
      if (progname) services.add(basename(progname));
    } catch {
      // gone, or not ours to read
    }
  }
  return [...services];
}

/**
 * sshd's PAM service under another name (sshd started through a link of that name uses it, and it
 * need not be running while setup runs): the same bytes as an sshd service file, or the comments
 * distributions put into it, or a require_publickey line.
 */
function looksLikeSshd(text: string, pamDir: string): boolean {
  for (const sshd of [...new Set([join(pamDir, "sshd"), "/etc/pam.d/sshd"])]) {
    try {
      if (readFileSync(sshd, "latin1") === text) return true;
    } catch {
      // no such file
    }
  }
  const comments = text
    .split("\n")
    .filter((l) => l.trim().startsWith("#"))
    .join("\n");
  return /Secure Shell|\bsshd\b|\bssh\b/i.test(comments) || /\bpam\b.*\brequire_publickey\b/.test(text);
}

/** Why setup must not write this PAM service, or null. `kind`: which setup is asking. */
export function foreignTargetProblem(kind: "ssh" | "rstudio", root: string, service: string, sshd: readonly string[]): string | null {
  const pamDir = inRoot(root, "/etc/pam.d");
  const why: string[] = [];
  if (SYSTEM_SERVICES.has(service) && !(kind === "ssh" && service === "sshd")) why.push("a service of the system's own logins or a file they share");
  else if (/^common-/.test(service)) why.push("one of the files Debian's services share");
  const includers = includersOf(pamDir, service);
  if (includers.length) why.push(`included by ${includers.slice(0, 4).join(", ")}${includers.length > 4 ? ", ..." : ""}, so every login there would run it`);
  if (kind === "rstudio" && runningSshdServices(sshd).includes(service)) why.push("the PAM service a running sshd authenticates with");
  if (kind === "rstudio") {
    const text = existsSync(join(pamDir, service)) ? readFileSync(join(pamDir, service), "latin1") : "";
    if (/^# otpgate: begin \(sshd:/m.test(text)) why.push("where otpgate setup ssh wrote sshd's stack");
    else if (text && looksLikeSshd(text, pamDir)) why.push("a copy of sshd's PAM service (an sshd started under this name would use it)");
  }
  if (why.length === 0) return null;
  const what =
    kind === "rstudio"
      ? "setup rstudio writes a stack where the code replaces the password and no SSH key is needed"
      : "setup ssh writes a stack that needs sshd's public-key step and replaces the password";
  return `--service ${service} is ${why.join("; ")}: ${what}, so it must only go into a file of its own. Nothing was written. Use ${kind === "rstudio" ? "RStudio's own service (--service rstudio, the default)" : "the service sshd runs under (--service sshd, the default)"}`;
}

export function refuseForeignTarget(kind: "ssh" | "rstudio", root: string, service: string, sshd: readonly string[]): void {
  const problem = foreignTargetProblem(kind, root, service, sshd);
  if (problem) throw new SetupError(problem);
}
