// otpgate doctor: checks that explain themselves. Each finding says what is wrong and how to fix
// it. Covers sshd's effective settings, the PAM stacks of sshd and RStudio, the users' state
// files, the otpgate installation and the clock.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import type { UserAccount } from "../platform/users.js";
import { accountStatus } from "./account-status.js";
import { FileAccountStore } from "../stores/file-store.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "../stores/secret-path.js";
import { inRoot } from "./setup/paths.js";
import { otpgateCommandOf } from "./setup/pam-line.js";
import { sshdConnectionProblems } from "./sshd-effective.js";

export type Severity = "ok" | "info" | "warn" | "fail";

export interface Finding {
  readonly check: string;
  readonly severity: Severity;
  readonly message: string;
  readonly fix?: string;
}

export interface DoctorOptions {
  readonly root: string;
  readonly sshd: string;
  readonly sshService: string;
  readonly rstudioService: string;
  readonly users: readonly UserAccount[];
  readonly secret?: string | undefined;
  readonly version: string;
  readonly installFiles: readonly string[];
  readonly nowMs: number;
}


export function checkVersions(version: string): Finding[] {
  const major = Number(/^v(\d+)/.exec(process.version)?.[1] ?? 0);
  return [
    { check: "versions", severity: "info", message: `otpgate ${version}, Node.js ${process.version}` },
    ...(major < 20 ? [{ check: "versions", severity: "fail" as const, message: `Node.js ${process.version} is too old`, fix: "install Node.js 20 or newer" }] : []),
  ];
}

/** The pam_exec pattern that works with sshd's setcred and RStudio; anything looser is flagged. */
export function checkPamService(path: string, label: string, rserverConf?: string): Finding[] {
  const check = `pam:${label}`;
  if (rserverConf && existsSync(rserverConf)) {
    const helper = /^\s*auth-pam-helper-path\s*=\s*(\S+)/m.exec(readFileSync(rserverConf, "utf8"))?.[1];
    if (helper && /otpgate/.test(helper)) {
      return [{ check, severity: "ok", message: `RStudio checks password + code through otpgate's helper (${helper}); ${path} checks the password` }];
    }
  }
  if (!existsSync(path)) return [{ check, severity: "info", message: `${path} does not exist (${label} not configured)`, fix: `otpgate setup ${label === "sshd" ? "ssh" : "rstudio"}` }];
  const lines = readFileSync(path, "utf8").split("\n").map((l) => l.trim());
  const auth = lines.filter((l) => /^auth\s/.test(l));
  const findings: Finding[] = [];
  const otpLine = auth.findIndex((l) => /pam_exec\.so/.test(l) && /\botpgate\S*\s+pam\b/.test(l));
  const gaLine = auth.findIndex((l) => /pam_google_authenticator\.so/.test(l));
  if (otpLine < 0 && gaLine < 0) {
    return [{ check, severity: "warn", message: `${path} has no one-time code check (neither otpgate pam nor pam_google_authenticator.so)`, fix: `otpgate setup ${label === "sshd" ? "ssh" : "rstudio"}` }];
  }
  if (otpLine >= 0) {
    const line = auth[otpLine]!;
    const control = /^auth\s+(\[[^\]]*\]|\S+)/.exec(line)?.[1] ?? "";
    if (control === "optional" || control === "sufficient") {
      findings.push({ check, severity: "fail", message: `${path}: the otpgate line is "${control}", so a wrong code does not stop the login`, fix: "use the pattern otpgate setup writes: [success=1 ignore=1 default=ignore] pam_exec ..., then requisite pam_deny.so, then required pam_permit.so" });
    } else if (control === "[success=1 ignore=1 default=ignore]") {
      const next = auth.slice(otpLine + 1, otpLine + 3).map((l) => l.replace(/\s+/g, " "));
      if (!/^auth requisite pam_deny\.so/.test(next[0] ?? "") || !/^auth required pam_permit\.so/.test(next[1] ?? "")) {
        findings.push({ check, severity: "fail", message: `${path}: after the otpgate line must come "auth requisite pam_deny.so" and "auth required pam_permit.so", or a failed code skips nothing`, fix: `otpgate setup ${label === "sshd" ? "ssh" : "rstudio"}` });
      }
    } else if (control === "required" || control === "requisite") {
      const permit = auth.slice(otpLine + 1).some((l) => /pam_permit\.so/.test(l));
      if (label === "sshd" && !permit) findings.push({ check, severity: "fail", message: `${path}: pam_exec alone makes sshd fail pam_setcred() after a correct code (every module ignores setcred)`, fix: 'add "auth required pam_permit.so" after it, or use the pattern otpgate setup writes' });
      else findings.push({ check, severity: "info", message: `${path}: "${control}" works, but failures show as "System error"; the pattern otpgate setup writes reports "Authentication failure"` });
    }
    if (!/\bexpose_authtok\b/.test(line)) findings.push({ check, severity: "fail", message: `${path}: pam_exec lacks expose_authtok, so otpgate never receives the code`, fix: "add expose_authtok" });
    if (!/\bquiet\b/.test(line)) findings.push({ check, severity: "warn", message: `${path}: pam_exec without quiet shows "... failed: exit code 1" to users (and RStudio treats it as a conversation error)`, fix: "add quiet" });
    if (/\btype=/.test(line)) findings.push({ check, severity: "fail", message: `${path}: pam_exec's type= makes it return PAM_IGNORE during authentication`, fix: "remove type=" });
    const words = line.split(/\s+/);
    const command = words.slice(words.findIndex((w) => w.startsWith("/")));
    const run = otpgateCommandOf(command); // node and otpgate, also behind setup's /usr/bin/env -u ... prefix
    for (const p of [...new Set([...command.slice(0, 1), ...(run ? [run.node, run.otpgate] : [])])].filter((w) => w.startsWith("/"))) {
      if (!existsSync(p)) findings.push({ check, severity: "fail", message: `${path}: ${p} does not exist, so every login fails`, fix: "reinstall otpgate or rerun otpgate setup (it writes absolute paths of node and otpgate)" });
    }
    if (!command[0]?.startsWith("/")) findings.push({ check, severity: "fail", message: `${path}: pam_exec runs commands without a PATH search; the command must be an absolute path`, fix: "use /usr/bin/node /path/to/otpgate.cjs pam" });
  }
  if (gaLine >= 0 && /\b(optional|sufficient)\b/.test(auth[gaLine]!.split(/\s+/)[1] ?? "")) {
    findings.push({ check, severity: "fail", message: `${path}: pam_google_authenticator.so is optional/sufficient, so any code (or none) gets in`, fix: "make it required" });
  }
  if (findings.length === 0) findings.push({ check, severity: "ok", message: `${path}: one-time code check in place (${otpLine >= 0 ? "otpgate pam" : "pam_google_authenticator.so"})` });
  return findings;
}

export function checkSshd(o: DoctorOptions): Finding[] {
  const check = "sshd";
  const config = inRoot(o.root, "/etc/ssh/sshd_config");
  if (!existsSync(o.sshd) || !existsSync(config)) return [{ check, severity: "info", message: "sshd is not installed here (nothing to check)" }];
  const r = spawnSync(o.sshd, ["-T", "-f", config, "-C", "user=root,host=localhost,addr=127.0.0.1"], { encoding: "utf8" });
  if (r.status !== 0) return [{ check, severity: "fail", message: `sshd -T fails: ${(r.stderr || r.stdout).trim()}`, fix: "fix sshd_config (sshd -t shows the error)" }];
  const eff = new Map(r.stdout.split("\n").map((l) => [l.split(" ")[0]!, l.slice(l.indexOf(" ") + 1)] as [string, string]));
  const findings: Finding[] = [];
  if (eff.get("usepam") !== "yes") findings.push({ check, severity: "fail", message: "UsePAM is not yes: sshd never asks PAM for the code", fix: "otpgate setup ssh" });
  if (eff.get("kbdinteractiveauthentication") !== "yes") findings.push({ check, severity: "fail", message: "KbdInteractiveAuthentication is not yes: the code prompt cannot be shown", fix: "otpgate setup ssh" });
  const methods = eff.get("authenticationmethods") ?? "any";
  if (!methods.split(" ").some((m) => m.split(",").includes("keyboard-interactive"))) {
    findings.push({ check, severity: "fail", message: `AuthenticationMethods is "${methods}": a login never needs the code (keyboard-interactive)`, fix: "otpgate setup ssh (AuthenticationMethods publickey,keyboard-interactive)" });
  }
  if (eff.get("passwordauthentication") === "yes") findings.push({ check, severity: "warn", message: "PasswordAuthentication is yes: with UsePAM the password method runs the same PAM stack", fix: "PasswordAuthentication no (otpgate setup ssh sets it)" });
  for (const message of sshdConnectionProblems(o.sshd, o.root, config, o.users[0]?.name, { matchOnly: true })) findings.push({ check, severity: "fail", message, fix: "change or remove that Match block so every connection needs publickey,keyboard-interactive (sshd -T -C shows the effect)" });
  if (findings.length === 0) findings.push({ check, severity: "ok", message: `sshd asks for ${methods}` });
  return findings;
}

export function checkStateFiles(o: DoctorOptions): Finding[] {
  const findings: Finding[] = [];
  let enrolled = 0;
  for (const user of o.users) {
    let path: string;
    try {
      path = expandSecretPath(o.secret ?? DEFAULT_SECRET_SPEC, { name: user.name, home: user.home || null });
    } catch {
      continue;
    }
    const s = accountStatus(new FileAccountStore({ path, owner: { uid: user.uid, name: user.name }, strictOwner: true, allowedPerm: 0o600 }), user.name, o.nowMs);
    if (!s.enrolled) continue;
    enrolled++;
    if (s.error) findings.push({ check: "state-files", severity: "fail", message: `${user.name}: ${s.error}`, fix: "the message says what to change" });
    else if (s.problems?.length) findings.push({ check: "state-files", severity: "fail", message: `${user.name}: ${s.problems.join("; ")}`, fix: `otpgate enroll --user ${user.name} -f` });
    else if (s.emergencyCodesLeft === 0) findings.push({ check: "state-files", severity: "warn", message: `${user.name} has no emergency codes left`, fix: `otpgate codes --user ${user.name} --regenerate` });
    if (s.rateLimitedNow) findings.push({ check: "state-files", severity: "info", message: `${user.name} is rate-limited right now` });
  }
  if (!findings.some((f) => f.severity === "fail" || f.severity === "warn")) findings.push({ check: "state-files", severity: enrolled ? "ok" : "info", message: `${enrolled} enrolled account(s)${enrolled ? ", all state files usable" : ""}` });
  return findings;
}

export function checkInstall(files: readonly string[]): Finding[] {
  const findings: Finding[] = [];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const st = statSync(f);
    if ((st.mode & 0o022) !== 0 || (st.uid !== 0 && process.geteuid?.() === 0)) {
      findings.push({ check: "install", severity: "fail", message: `${f} is writable by someone other than root (owner uid ${st.uid}, mode 0${(st.mode & 0o777).toString(8)}); PAM runs it as root`, fix: `chown root:root ${f}; chmod go-w ${f}` });
    }
  }
  if (findings.length === 0) findings.push({ check: "install", severity: "ok", message: "otpgate's files are writable by root only" });
  return findings;
}

/** Clock synchronisation as the system reports it; unknown is a warning, because codes depend on it. */
export function checkClock(): Finding[] {
  const check = "clock";
  const timedatectl = spawnSync("timedatectl", ["show", "-p", "NTPSynchronized", "--value"], { encoding: "utf8", timeout: 5000 });
  if (timedatectl.status === 0) {
    return timedatectl.stdout.trim() === "yes"
      ? [{ check, severity: "ok", message: "the clock is synchronised (timedatectl)" }]
      : [{ check, severity: "warn", message: "the clock is NOT synchronised (timedatectl): codes will fail as it drifts", fix: "enable time sync: timedatectl set-ntp true, or install chrony" }];
  }
  const chrony = spawnSync("chronyc", ["-n", "tracking"], { encoding: "utf8", timeout: 5000 });
  if (chrony.status === 0) {
    return /Leap status\s*:\s*Normal/.test(chrony.stdout)
      ? [{ check, severity: "ok", message: "the clock is synchronised (chrony)" }]
      : [{ check, severity: "warn", message: "chrony reports the clock is not synchronised", fix: "check chronyc sources" }];
  }
  if (existsSync("/run/systemd/timesync/synchronized")) return [{ check, severity: "ok", message: "the clock is synchronised (systemd-timesyncd)" }];
  return [{ check, severity: "warn", message: "cannot tell whether the clock is synchronised (no timedatectl, chrony or timesyncd here); one-time codes fail when it drifts", fix: "install chrony or systemd-timesyncd" }];
}

export function runDoctor(o: DoctorOptions): Finding[] {
  return [
    ...checkVersions(o.version),
    ...checkInstall(o.installFiles),
    ...checkSshd(o),
    ...checkPamService(inRoot(o.root, `/etc/pam.d/${o.sshService}`), "sshd"),
    ...checkPamService(inRoot(o.root, `/etc/pam.d/${o.rstudioService}`), "rstudio", inRoot(o.root, "/etc/rstudio/rserver.conf")),
    ...checkStateFiles(o),
    ...checkClock(),
  ];
}
