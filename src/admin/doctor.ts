// otpgate doctor: checks that explain themselves. Each finding says what is wrong and how to fix
// it. Covers sshd's effective settings, the PAM stacks of sshd and RStudio, the users' state
// files, the otpgate installation and the clock.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { installProblems, pathProblems, type TrustProblem } from "../platform/trusted-path.js";
import type { UserAccount } from "../platform/users.js";
import { accountStatus } from "./account-status.js";
import { bypassBefore, isOtpgateLine, moduleName, otpgateCommand, otpgateInvocation, readPamStack, type PamLine } from "./pam-stack.js";
import { radiusStackFindings } from "./radius-stack.js";
import { sshdConfigFiles, staleSshdConfig } from "./sshd-reload.js";
import type { FileAccountStore } from "../stores/file-store.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "../stores/secret-path.js";
import { inRoot } from "./setup/paths.js";
import { sshdConnectionProblems } from "./sshd-effective.js";
import { pamDirsFor, rstudioChainProblems } from "./rstudio-chain.js";
import { checkRadiusHardening } from "./radius-hardening.js";
import { checkServerLayout, systemLayoutProbe } from "./server-layout.js";

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
  /** The store of `owner`'s state file at `path`, opened as the owner (the composition root builds it). */
  readonly openState: (owner: UserAccount, path: string) => FileAccountStore;
  readonly version: string;
  /** What runs this doctor: node and the otpgate launcher as invoked (links are followed and checked). */
  readonly install: { readonly node: string; readonly launcher: string } | null;
  readonly nowMs: number;
}

export function checkVersions(version: string): Finding[] {
  const major = Number(/^v(\d+)/.exec(process.version)?.[1] ?? 0);
  return [
    { check: "versions", severity: "info", message: `otpgate ${version}, Node.js ${process.version}` },
    ...(major < 20 ? [{ check: "versions", severity: "fail" as const, message: `Node.js ${process.version} is too old`, fix: "install Node.js 20 or newer" }] : []),
  ];
}

/** Modules that check a credential of their own (a password, a key, a token). */
const AUTHENTICATING = /^pam_(unix|sss|ldap|krb5|winbind|google_authenticator|radius_auth|oath|u2f|yubico|userdb|pwdfile|python|script|duo|p11|fprintd|mysql|pgsql)\.so$/;

/** Does a line other than otpgate's own check a credential (an unreadable include counts: unknown). */
function authenticates(l: PamLine): boolean {
  if (l.unreadableInclude) return true;
  if (/^(optional|sufficient)$/.test(l.control)) return false;
  return AUTHENTICATING.test(moduleName(l)) && !isOtpgateLine(l);
}

const SETUP = (label: string) => `otpgate setup ${label === "sshd" ? "ssh" : "rstudio"}`;

/** Everything that would let code other than root's into the root process the PAM line starts. */
function commandTrust(path: string, check: string, node: string, launcher: string, env: string | null): Finding[] {
  const problems: TrustProblem[] = [...(env ? pathProblems(env) : []), ...installProblems({ node, launcher })];
  return problems.map((p) => ({
    check,
    severity: "fail" as const,
    message: `${path}: root runs ${launcher} with ${node || "its #! line"}, but ${p.path} is ${p.reason}: whoever can change it can run code as root`,
    fix: p.fix,
  }));
}

export interface PamServiceContext {
  /** rserver.conf: RStudio may check password + code through otpgate's helper instead. */
  readonly rserverConf?: string;
  /** sshd asks for a public key first (AuthenticationMethods): otpgate must check that it did. */
  readonly keyFactors?: boolean;
}

/** The pam_exec pattern that works with sshd's setcred and RStudio; anything looser is flagged. */
export function checkPamService(path: string, label: string, context: PamServiceContext = {}): Finding[] {
  const check = `pam:${label}`;
  const { rserverConf } = context;
  if (rserverConf && existsSync(rserverConf)) {
    const helper = /^\s*auth-pam-helper-path\s*=\s*(\S+)/m.exec(readFileSync(rserverConf, "utf8"))?.[1];
    if (helper && /otpgate/.test(helper)) {
      const chain = rstudioChainProblems("password+code", path, rserverConf).map((message) => ({
        check,
        severity: "fail" as const,
        message,
        fix: "otpgate setup rstudio --factors password+code (it restores the password stack in the PAM service)",
      }));
      const helperFindings = checkRstudioHelper(check, path, helper, rserverConf);
      return chain.length ? [...chain, ...helperFindings.filter((f) => f.severity !== "ok")] : helperFindings;
    }
  }
  if (!existsSync(path)) return [{ check, severity: "info", message: `${path} does not exist (${label} not configured)`, fix: SETUP(label) }];
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .map((l) => l.trim());
  const auth = lines.filter((l) => /^auth\s/.test(l));
  const findings: Finding[] = [];
  const otpLine = auth.findIndex((l) => /pam_exec\.so/.test(l) && /\botpgate\S*\s+pam\b/.test(l));
  const gaLine = auth.findIndex((l) => /pam_google_authenticator\.so/.test(l));
  if (otpLine < 0 && gaLine < 0) {
    // The RADIUS backend (otpgate setup ssh --backend radius): its own checks (services/radius-stack.ts).
    const radius = radiusStackFindings(path, readPamStack(path, pamDirsFor(path), "auth"));
    if (radius) return radius.map((f) => ({ check, ...f }));
    return [{ check, severity: "warn", message: `${path} has no one-time code check (neither otpgate pam, pam_radius_auth.so nor pam_google_authenticator.so)`, fix: SETUP(label) }];
  }
  if (otpLine >= 0) {
    const line = auth[otpLine]!;
    const control = /^auth\s+(\[[^\]]*\]|\S+)/.exec(line)?.[1] ?? "";
    if (control === "optional" || control === "sufficient") {
      findings.push({
        check,
        severity: "fail",
        message: `${path}: the otpgate line is "${control}", so a wrong code does not stop the login`,
        fix: "use the pattern otpgate setup writes: [success=1 ignore=1 default=ignore] pam_exec ..., then requisite pam_deny.so, then required pam_permit.so",
      });
    } else if (control === "[success=1 ignore=1 default=ignore]") {
      const next = auth.slice(otpLine + 1, otpLine + 3).map((l) => l.replace(/\s+/g, " "));
      if (!/^auth requisite pam_deny\.so/.test(next[0] ?? "") || !/^auth required pam_permit\.so/.test(next[1] ?? "")) {
        findings.push({
          check,
          severity: "fail",
          message: `${path}: after the otpgate line must come "auth requisite pam_deny.so" and "auth required pam_permit.so", or a failed code skips nothing`,
          fix: SETUP(label),
        });
      }
    } else if (control === "required" || control === "requisite") {
      const permit = auth.slice(otpLine + 1).some((l) => /pam_permit\.so/.test(l));
      if (label === "sshd" && !permit)
        findings.push({
          check,
          severity: "fail",
          message: `${path}: pam_exec alone makes sshd fail pam_setcred() after a correct code (every module ignores setcred)`,
          fix: 'add "auth required pam_permit.so" after it, or use the pattern otpgate setup writes',
        });
      else findings.push({ check, severity: "info", message: `${path}: "${control}" works, but failures show as "System error"; the pattern otpgate setup writes reports "Authentication failure"` });
    }
    if (!/\bexpose_authtok\b/.test(line)) findings.push({ check, severity: "fail", message: `${path}: pam_exec lacks expose_authtok, so otpgate never receives the code`, fix: "add expose_authtok" });
    if (!/\bquiet\b/.test(line))
      findings.push({ check, severity: "warn", message: `${path}: pam_exec without quiet shows "... failed: exit code 1" to users (and RStudio treats it as a conversation error)`, fix: "add quiet" });
    if (/\btype=/.test(line)) findings.push({ check, severity: "fail", message: `${path}: pam_exec's type= makes it return PAM_IGNORE during authentication`, fix: "remove type=" });
    const words = line.split(/\s+/);
    const command = words.slice(words.findIndex((w) => w.startsWith("/")));
    if (!command[0]?.startsWith("/"))
      findings.push({
        check,
        severity: "fail",
        message: `${path}: pam_exec runs commands without a PATH search; the command must be an absolute path`,
        fix: "use /usr/bin/node /path/to/otpgate.cjs pam",
      });
    findings.push(...checkOtpgateStack(path, label, context));
  }
  if (gaLine >= 0 && /\b(optional|sufficient)\b/.test(auth[gaLine]!.split(/\s+/)[1] ?? "")) {
    findings.push({ check, severity: "fail", message: `${path}: pam_google_authenticator.so is optional/sufficient, so any code (or none) gets in`, fix: "make it required" });
  }
  if (findings.length === 0) findings.push({ check, severity: "ok", message: `${path}: one-time code check in place (${otpLine >= 0 ? "otpgate pam" : "pam_google_authenticator.so"})` });
  return findings;
}

/**
 * The whole auth stack around otpgate's line, includes expanded: what root runs (paths that exist,
 * owned by root), what its environment can carry, and whether anything authenticates a user the
 * line lets through (nullok) or whose key sshd never checked.
 */
function checkOtpgateStack(path: string, label: string, context: PamServiceContext): Finding[] {
  const check = `pam:${label}`;
  const stack = readPamStack(path, pamDirsFor(path), "auth");
  const at = stack.findIndex(isOtpgateLine);
  if (at < 0) return [];
  const cmd = otpgateCommand(stack[at]!)!;
  const options = new Set(cmd.options.map((o) => o.split("=")[0]!));
  const findings: Finding[] = [];
  const missing = [cmd.env, cmd.node, cmd.launcher].filter((p): p is string => !!p && p.startsWith("/") && !existsSync(p));
  for (const p of missing)
    findings.push({
      check,
      severity: "fail",
      message: `${path}: ${p} does not exist, so every login fails`,
      fix: "reinstall otpgate or rerun otpgate setup (it writes absolute paths of node and otpgate)",
    });
  if (missing.length === 0) findings.push(...commandTrust(path, check, cmd.node, cmd.launcher, cmd.env));

  const unsets = new Set(cmd.unset);
  if (!unsets.has("*") && !(unsets.has("NODE_OPTIONS") && unsets.has("NODE_PATH"))) {
    findings.push({
      check,
      severity: "warn",
      message: `${path}: the PAM environment reaches node unfiltered (NODE_OPTIONS, NODE_PATH); otpgate refuses to run as root when it finds them, so a login then fails`,
      fix: `${SETUP(label)} (the line runs /usr/bin/env -u NODE_OPTIONS -u NODE_PATH ... node)`,
    });
  }
  const skipper = bypassBefore(stack, at);
  if (skipper) {
    findings.push({
      check,
      severity: "fail",
      message: `${path}: "auth ${skipper.control} ${skipper.unreadableInclude ?? skipper.module}" (${skipper.file}) comes before otpgate's line: when it ends the stack with success or jumps over otpgate's line, the code is never asked`,
      fix: `make it required/requisite, or move it after otpgate's lines; ${SETUP(label)} writes a working stack`,
    });
  }
  const readenv = stack.slice(0, at).find((l) => moduleName(l) === "pam_env.so" && l.args.some((a) => /^user_readenv=1$/.test(a)));
  if (readenv) {
    findings.push({
      check,
      severity: "fail",
      message: `${path}: pam_env.so with user_readenv=1 (${readenv.file}) runs in the auth phase before otpgate: each user's ~/.pam_environment can then set variables (NODE_OPTIONS, LD_PRELOAD, ...) for the root process that checks the code`,
      fix: "move pam_env.so user_readenv=1 to the session phase, or drop user_readenv=1 there",
    });
  }
  if (options.has("nullok") && !options.has("password") && !(label === "sshd" && options.has("require_publickey"))) {
    const other = stack.find((l, i) => i !== at && authenticates(l));
    if (!other) {
      findings.push({
        check,
        severity: "fail",
        message: `${path}: CRITICAL: otpgate's line has nullok and nothing else in the auth stack checks a credential (no password stack, no${label === "sshd" ? " require_publickey," : ""} no password option): anyone not enrolled logs in without any authentication`,
        fix: `remove nullok (enroll every user first), or keep the password stack (@include common-auth)${label === "sshd" ? ", or add require_publickey (sshd must have checked a key)" : ""}; ${SETUP(label)} without --nullok`,
      });
    }
  }
  if (label === "sshd" && context.keyFactors && !options.has("require_publickey")) {
    findings.push({
      check,
      severity: "fail",
      message: `${path}: sshd asks for a public key first, but otpgate's line lacks require_publickey: until sshd is reloaded, or where a Match block allows the password or keyboard-interactive method alone, the code by itself is a login`,
      fix: `${SETUP(label)} (it adds require_publickey: otpgate then refuses unless sshd reports a completed publickey step)`,
    });
  }
  return findings;
}

/** RStudio through otpgate's auth-pam-helper-path: the helper and what it runs must be root's. */
function checkRstudioHelper(check: string, path: string, helper: string, rserverConf: string): Finding[] {
  const findings: Finding[] = pathProblems(helper).map((p) => ({
    check,
    severity: "fail" as const,
    message: `${rserverConf}: rserver runs ${helper} as root, but ${p.path} is ${p.reason}`,
    fix: p.fix,
  }));
  let script = "";
  try {
    script = readFileSync(helper, "latin1");
  } catch {
    script = "";
  }
  const exec = /^exec\s+'?([^'\s]+)'?\s+'?([^'\s]+)'?\s+rstudio-helper\b/m.exec(script);
  if (exec) findings.push(...commandTrust(helper, check, exec[1]!, exec[2]!, null));
  if (findings.length === 0) findings.push({ check, severity: "ok", message: `RStudio checks password + code through otpgate's helper (${helper}); ${path} checks the password` });
  return findings;
}

/**
 * otpgate-radius.service (older installs: otpgate radius) next to otpgate-server.service (what
 * setup writes now): both listen for RADIUS, so only one may run; the old one is still accepted alone.
 */
export function checkRadiusUnitPair(oldUnit: string, newUnit: string): Finding[] {
  if (!existsSync(oldUnit) || !existsSync(newUnit)) return [];
  return [
    {
      check: "radius",
      severity: "warn",
      message: `both ${oldUnit} (written by an older otpgate setup, runs otpgate radius) and ${newUnit} exist; they listen for RADIUS, so only one of them can run`,
      fix: "systemctl disable --now otpgate-radius && systemctl enable --now otpgate-server, then remove the old unit file",
    },
  ];
}

/** The otpgate-radius service setup writes: systemd runs it as root, so it must be root's alone too. */
export function checkRadiusUnit(unit: string): Finding[] {
  let text: string;
  try {
    text = readFileSync(unit, "latin1");
  } catch {
    return [];
  }
  const exec = /^ExecStart=[-@:+!]*(.*)$/m.exec(text)?.[1] ?? "";
  const words = exec
    .trim()
    .split(/\s+/)
    .map((w) => w.replace(/^"(.*)"$/, "$1"));
  const cmd = otpgateInvocation(words, "radius") ?? otpgateInvocation(words, "server");
  if (!cmd) return [];
  const missing = [cmd.env, cmd.node, cmd.launcher].filter((p): p is string => !!p && p.startsWith("/") && !existsSync(p));
  if (missing.length)
    return missing.map((p) => ({
      check: "radius",
      severity: "fail" as const,
      message: `${unit}: ${p} does not exist, so the code checker cannot start and every login fails`,
      fix: "reinstall otpgate or rerun otpgate setup ssh --backend radius",
    }));
  const findings = commandTrust(unit, "radius", cmd.node, cmd.launcher, cmd.env);
  return findings.length ? findings : [{ check: "radius", severity: "ok", message: `${unit}: runs ${cmd.launcher}, root's alone` }];
}

export interface SshdEffective {
  readonly findings: Finding[];
  /** sshd -T's settings for the default connection, or null when sshd could not tell. */
  readonly settings: ReadonlyMap<string, string> | null;
}

export function checkSshd(o: DoctorOptions): SshdEffective {
  const check = "sshd";
  const config = inRoot(o.root, "/etc/ssh/sshd_config");
  if (!existsSync(o.sshd) || !existsSync(config)) return { findings: [{ check, severity: "info", message: "sshd is not installed here (nothing to check)" }], settings: null };
  const r = spawnSync(o.sshd, ["-T", "-f", config, "-C", "user=root,host=localhost,addr=127.0.0.1"], { encoding: "utf8" });
  if (r.status !== 0) return { findings: [{ check, severity: "fail", message: `sshd -T fails: ${(r.stderr || r.stdout).trim()}`, fix: "fix sshd_config (sshd -t shows the error)" }], settings: null };
  const eff = new Map(r.stdout.split("\n").map((l) => [l.split(" ")[0]!, l.slice(l.indexOf(" ") + 1)] as [string, string]));
  const findings: Finding[] = [];
  if (eff.get("usepam") !== "yes") findings.push({ check, severity: "fail", message: "UsePAM is not yes: sshd never asks PAM for the code", fix: "otpgate setup ssh" });
  if (eff.get("kbdinteractiveauthentication") !== "yes")
    findings.push({ check, severity: "fail", message: "KbdInteractiveAuthentication is not yes: the code prompt cannot be shown", fix: "otpgate setup ssh" });
  const methods = eff.get("authenticationmethods") ?? "any";
  if (!methods.split(" ").some((m) => m.split(",").includes("keyboard-interactive"))) {
    findings.push({
      check,
      severity: "fail",
      message: `AuthenticationMethods is "${methods}": a login never needs the code (keyboard-interactive)`,
      fix: "otpgate setup ssh (AuthenticationMethods publickey,keyboard-interactive)",
    });
  }
  if (eff.get("passwordauthentication") === "yes")
    findings.push({
      check,
      severity: "warn",
      message: "PasswordAuthentication is yes: with UsePAM the password method runs the same PAM stack",
      fix: "PasswordAuthentication no (otpgate setup ssh sets it)",
    });
  for (const message of sshdConnectionProblems(o.sshd, o.root, config, o.users[0]?.name, { matchOnly: true }))
    findings.push({ check, severity: "fail", message, fix: "change or remove that Match block so every connection needs publickey,keyboard-interactive (sshd -T -C shows the effect)" });
  findings.push(...checkSshdReloaded(o, eff, config));
  if (findings.length === 0) findings.push({ check, severity: "ok", message: `sshd asks for ${methods}` });
  return { findings, settings: eff };
}

/** A path from sshd's own configuration, under --root unless the configuration already names it there. */
const sshdPath = (root: string, p: string) => (root === "/" || p.startsWith(root.replace(/\/$/, "") + "/") ? p : inRoot(root, p));

function checkSshdReloaded(o: DoctorOptions, eff: ReadonlyMap<string, string>, config: string): Finding[] {
  const pidFile = eff.get("pidfile");
  if (!pidFile || pidFile === "none") return [];
  const stale = staleSshdConfig(
    sshdPath(o.root, pidFile),
    sshdConfigFiles(config, (p) => sshdPath(o.root, p)),
  );
  if (!stale) return [];
  const when = (ms: number) =>
    new Date(ms)
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d+Z$/, " UTC");
  return [
    {
      check: "sshd",
      severity: "warn",
      message: `the running sshd (pid ${stale.pid}) has not reloaded its configuration since ${stale.changed.map((c) => `${c.path} changed (${when(c.mtimeMs)})`).join(", ")}; it last read it at ${when(stale.loadedAtMs)}, so it may still run the old settings (what this report says about sshd is not live yet)`,
      fix: `keep a session open, then reload it: systemctl reload ssh (or kill -HUP ${stale.pid}), and log in from a new terminal`,
    },
  ];
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
    const s = accountStatus(o.openState(user, path), user.name, o.nowMs);
    if (!s.enrolled) continue;
    enrolled++;
    if (s.error) findings.push({ check: "state-files", severity: "fail", message: `${user.name}: ${s.error}`, fix: "the message says what to change" });
    else if (s.problems?.length) findings.push({ check: "state-files", severity: "fail", message: `${user.name}: ${s.problems.join("; ")}`, fix: `otpgate enroll --user ${user.name} -f` });
    else if (s.emergencyCodesLeft === 0)
      findings.push({ check: "state-files", severity: "warn", message: `${user.name} has no emergency codes left`, fix: `otpgate codes --user ${user.name} --regenerate` });
    if (s.rateLimitedNow) findings.push({ check: "state-files", severity: "info", message: `${user.name} is rate-limited right now` });
  }
  if (!findings.some((f) => f.severity === "fail" || f.severity === "warn"))
    findings.push({ check: "state-files", severity: enrolled ? "ok" : "info", message: `${enrolled} enrolled account(s)${enrolled ? ", all state files usable" : ""}` });
  return findings;
}

/** This otpgate's own installation (what setup would write into a root PAM line). */
export function checkInstall(install: DoctorOptions["install"]): Finding[] {
  if (!install) return [{ check: "install", severity: "warn", message: "cannot tell which otpgate runs (no launcher path)", fix: "run otpgate by its path, e.g. /usr/local/bin/otpgate doctor" }];
  const findings: Finding[] = installProblems(install).map((p) => ({
    check: "install",
    severity: "fail" as const,
    message: `${p.path} is ${p.reason}: PAM runs otpgate (${install.launcher}) and node (${install.node}) as root, so whoever can change it can run code as root`,
    fix: p.fix,
  }));
  if (findings.length === 0) findings.push({ check: "install", severity: "ok", message: `node, otpgate and every file they load are root's and writable by root only (${install.launcher})` });
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
  return [
    {
      check,
      severity: "warn",
      message: "cannot tell whether the clock is synchronised (no timedatectl, chrony or timesyncd here); one-time codes fail when it drifts",
      fix: "install chrony or systemd-timesyncd",
    },
  ];
}

export function runDoctor(o: DoctorOptions): Finding[] {
  const sshd = checkSshd(o);
  const methods = sshd.settings?.get("authenticationmethods") ?? "";
  const keyFactors = methods.split(" ").some((list) => list.split(",").includes("publickey"));
  return [
    ...checkVersions(o.version),
    ...checkInstall(o.install),
    ...sshd.findings,
    ...checkPamService(inRoot(o.root, `/etc/pam.d/${o.sshService}`), "sshd", { keyFactors }),
    ...checkPamService(inRoot(o.root, `/etc/pam.d/${o.rstudioService}`), "rstudio", { rserverConf: inRoot(o.root, "/etc/rstudio/rserver.conf") }),
    ...checkRadiusUnit(inRoot(o.root, "/etc/systemd/system/otpgate-radius.service")),
    ...checkRadiusHardening(inRoot(o.root, "/etc/systemd/system/otpgate-radius.service")),
    ...checkRadiusUnit(inRoot(o.root, "/etc/systemd/system/otpgate-server.service")),
    ...checkRadiusHardening(inRoot(o.root, "/etc/systemd/system/otpgate-server.service")),
    ...checkRadiusUnitPair(inRoot(o.root, "/etc/systemd/system/otpgate-radius.service"), inRoot(o.root, "/etc/systemd/system/otpgate-server.service")),
    // The running layout only for this machine (not for a --root image).
    ...(o.root === "/" ? checkServerLayout(systemLayoutProbe("/run/otpgate/server.sock", "otpgate")) : []),
    ...checkStateFiles(o),
    ...checkClock(),
  ];
}
