// otpgate setup ssh: sshd settings (a drop-in when sshd_config includes one, else the main file)
// and the PAM stack, with a lock-out guard, validation by sshd itself, and rollback.

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { OtpgateError } from "../../core/errors.js";
import { lookupUserByName, type UserAccount } from "../../platform/users.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "../../stores/secret-path.js";
import { resolveInclude, sshdConnectionProblems } from "../sshd-effective.js";
import { type FileChange } from "./apply.js";
import { pamLine } from "./pam-line.js";
import { inRoot, readIfExists as read } from "./paths.js";
import { refuseForeignTarget } from "./targets.js";
import { BEGIN, END, authBlock, authOrderProblem, includedDropInDir, pamArgLabel, planPamService, planSshdMain, sshdDropIn, validatePamText, type SshFactors } from "./plan.js";
import { serverUnit } from "./systemd-unit.js";

export interface SshSetupOptions {
  readonly root: string;
  readonly service: string;
  readonly factors: SshFactors;
  readonly hint: boolean;
  readonly nullok: boolean;
  readonly secret?: string | undefined;
  readonly node: string;
  readonly otpgate: string;
  readonly sshd: string;
  /** pam_exec runs otpgate per login; radius: pam_radius_auth.so asks a resident `otpgate radius`. */
  readonly backend: "pam_exec" | "radius";
  readonly radiusPort: number;
  /** Keep learning clock skew from codes (off by default: see --skew-adjust in the help). */
  readonly skewAdjust?: boolean | undefined;
  /** radius: the otpgate server decides on the fleet database (--store); the password only as a file path. */
  readonly store?: { readonly url: string; readonly passwordFile?: string | undefined; readonly keyFile: string } | undefined;
}

export const SSHD_CONFIG = "/etc/ssh/sshd_config";
export const DROP_IN_NAME = "10-otpgate.conf";

export function sshManifest(root: string): string {
  return inRoot(root, "/etc/otpgate/setup-ssh.json");
}

export function sshMainConfigPath(root: string): string {
  return inRoot(root, SSHD_CONFIG);
}

export function planSsh(o: SshSetupOptions): FileChange[] {
  refuseForeignTarget("ssh", o.root, o.service, [o.sshd]);
  const mainPath = inRoot(o.root, SSHD_CONFIG);
  const main = read(mainPath);
  if (main === null) throw new OtpgateError(`${mainPath} does not exist: is openssh-server installed? (use --root for another filesystem)`);
  const changes: FileChange[] = [];
  const dropInDir = includedDropInDir(main);
  if (dropInDir) {
    // sshd resolves a relative Include against /etc/ssh; under --root an absolute one may already point inside the root.
    const dir = resolveInclude(o.root, dropInDir);
    changes.push({ path: join(dir, DROP_IN_NAME), next: sshdDropIn(), mode: 0o644 });
  } else {
    changes.push({ path: mainPath, next: planSshdMain(main) });
  }
  const pamPath = inRoot(o.root, `/etc/pam.d/${o.service}`);
  const password = o.factors === "key+password+code";
  const hint = !o.hint
    ? null
    : password
      ? "Type your password immediately followed by your 6-digit code at the Password prompt."
      : "Verification code required for %u. Type the code from your authenticator app at the Password prompt.";
  // require_publickey: otpgate pam itself refuses unless sshd reports a completed publickey step, so
  // neither a running sshd that still allows passwords nor a Match block can make the code a password.
  const pamArgs = ["require_publickey", ...(o.secret ? [`secret=${o.secret}`] : []), ...(o.nullok ? ["nullok"] : []), ...(password ? ["password"] : []), ...(o.skewAdjust ? [] : ["noskewadj"])];
  const block = o.backend === "radius" ? radiusBlock(o, changes) : authBlock({ node: o.node, otpgate: o.otpgate, pamArgs, hint }, `sshd: ${o.factors}, written by otpgate setup ssh`);
  const tail = ["@include common-account", "@include common-session", "@include common-password"];
  changes.push({ path: pamPath, next: planPamService(read(pamPath), block, { replacePassword: true, tail }), mode: 0o644 });
  return changes;
}

export interface LockoutNeeds {
  readonly root: string;
  /** sshd's AuthenticationMethods needs a key. */
  readonly key: boolean;
  /** The login checks the admin's local password (key+password+code, rstudio password+code). */
  readonly password: boolean;
}

/**
 * The admin's local password as /etc/shadow records it (under --root, the root's shadow when it
 * knows the account): "locked" for a leading '!' or '*' (useradd's default, usual on cloud
 * images), "empty" for none, "unknown" when no shadow entry is readable.
 */
export function passwordState(root: string, name: string): "usable" | "locked" | "empty" | "unknown" {
  for (const file of root === "/" ? ["/etc/shadow"] : [inRoot(root, "/etc/shadow"), "/etc/shadow"]) {
    const entry = read(file)
      ?.split("\n")
      .find((l) => l.startsWith(`${name}:`));
    if (entry === undefined) continue;
    const hash = entry.split(":")[1] ?? "";
    return hash === "" ? "empty" : hash.startsWith("!") || hash.startsWith("*") ? "locked" : "usable";
  }
  return "unknown";
}

/**
 * The text of `owner`'s state file at `path`, read as the owner (null: none); throws when it cannot
 * be used. The composition root (commands/setup.ts) passes it, built on stores/file-accounts.ts.
 */
export type StatePeek = (owner: UserAccount, path: string) => string | null;

/**
 * The admin's state file under this pattern (as the admin, like otpgate pam reads it): null when
 * it exists and can be used, else why not.
 */
export function adminStateProblem(admin: string, secret: string | undefined, peekState: StatePeek): string | null {
  const user = lookupUserByName(admin);
  if (!user) return `the admin account "${admin}" does not exist`;
  const path = expandSecretPath(secret ?? DEFAULT_SECRET_SPEC, { name: user.name, home: user.home || null });
  try {
    const text = peekState(user, path);
    return text === null ? `${admin} is not enrolled (no ${path}): run "otpgate enroll --user ${admin}" first, or ${admin} could not log in after the change` : null;
  } catch (err) {
    return `${admin}'s state file cannot be used: ${(err as Error).message}`;
  }
}

/** Refuse changes that would lock the admin out: enrolled, a key (ssh), a usable password (password factors). */
export function lockoutProblems(admin: string | undefined, secret: string | undefined, needs: LockoutNeeds, peekState: StatePeek): string[] {
  if (admin === undefined) {
    return ["no admin to protect from a lock-out: run it with sudo (SUDO_USER) or pass --admin NAME (or --allow-unenrolled if you know what you are doing)"];
  }
  const user = lookupUserByName(admin);
  if (!user) return [`the admin account "${admin}" does not exist`];
  const problems: string[] = [];
  const state = adminStateProblem(admin, secret, peekState);
  if (state) problems.push(state);
  const keys = join(user.home, ".ssh/authorized_keys");
  if (needs.key && (!existsSync(keys) || statSync(keys).size === 0)) problems.push(`${admin} has no ${keys}: with AuthenticationMethods publickey,keyboard-interactive a key is required`);
  if (needs.password) {
    const state = passwordState(needs.root, user.name);
    if (state === "locked")
      problems.push(
        `${admin}'s password is locked (it starts with ! or * in /etc/shadow, as on most cloud images), and these factors check it: set one first (passwd ${admin}), or choose factors without the password`,
      );
    else if (state === "empty") problems.push(`${admin} has no password in /etc/shadow, and these factors check it: set one first (passwd ${admin})`);
    else if (state === "unknown") problems.push(`cannot read ${admin}'s entry in /etc/shadow to check that the password these factors need is usable: run setup as root`);
  }
  return problems;
}

/**
 * sshd -t on the new configuration, then sshd -T for every kind of connection the configuration
 * distinguishes (each Match block, and none): all must need a key and then the code.
 */
export function validateSshd(o: SshSetupOptions, admin: string | undefined): string | null {
  const pamProblem = validatePamText(read(inRoot(o.root, `/etc/pam.d/${o.service}`)) ?? "");
  if (pamProblem) return pamProblem;
  const config = inRoot(o.root, SSHD_CONFIG);
  if (!existsSync(o.sshd)) return `cannot validate: ${o.sshd} does not exist (pass --sshd PATH)`;
  const order = authOrderProblem(inRoot(o.root, `/etc/pam.d/${o.service}`));
  if (order) return order;
  const t = spawnSync(o.sshd, ["-t", "-f", config], { encoding: "utf8" });
  if (t.status !== 0) return `sshd -t rejected the new configuration, so every file was restored:\n${(t.stderr || t.stdout).trim()}`;
  const problems = sshdConnectionProblems(o.sshd, o.root, config, admin);
  if (problems.length) {
    return `after the change sshd would still let some connections in without key + code, so every file was restored:\n${problems.map((p) => `  - ${p}`).join("\n")}\nsshd takes the first value of a keyword (an earlier line or drop-in wins) and a Match block overrides it for the connections it matches: change or remove those lines, then run setup again ("sshd -T -C user=...,addr=..." shows what sshd uses)`;
  }
  return null;
}

/**
 * Before pam_radius_auth: refuse unless sshd reports a completed publickey step (a line of
 * SSH_AUTH_INFO_0, which sshd puts into the PAM environment, starts with "publickey "). Plain sh
 * with builtins only (no node per login); no '#' or '\\' so the line survives PAM's parser:
 * the newline comes from $(echo; echo x) with the x cut off.
 */
export const PUBLICKEY_CHECK = 'n=$(echo; echo x); n=${n%x}; case "$n$SSH_AUTH_INFO_0" in *"${n}publickey "*) exit 0;; esac; exit 1';

/**
 * The RADIUS backend: shared secret, pam_radius_auth's server file, a systemd unit, the PAM lines.
 * With key+password+code the local password is a module of its own that must succeed BEFORE
 * pam_radius_auth runs ([success=ok default=die]: any failure ends the stack there), so a wrong
 * password never sends the code to otpgate radius and cannot use it up. The password is asked at
 * its own "Password: " prompt (pam_unix), then the code at "Verification code: ".
 */
function radiusBlock(o: SshSetupOptions, changes: FileChange[]): string[] {
  const password = o.factors === "key+password+code";
  const secretPath = inRoot(o.root, "/etc/otpgate/radius.secret");
  const confPath = inRoot(o.root, "/etc/otpgate/pam_radius.conf");
  const secret = read(secretPath)?.trim() || randomBytes(24).toString("hex");
  changes.push({ path: secretPath, next: secret + "\n", mode: 0o600 });
  changes.push({ path: confPath, next: `# Written by otpgate setup ssh --backend radius: where pam_radius_auth.so asks for codes.\n127.0.0.1:${o.radiusPort} ${secret} 3\n`, mode: 0o600 });
  // otpgate server (otpgate-server.service); an otpgate-radius.service of an older install is left
  // as it is (rollback restores what this setup changed; doctor checks both and warns when both exist).
  const args = [
    "server",
    "--listen",
    `127.0.0.1:${o.radiusPort}`,
    "--secret-file",
    secretPath,
    ...(o.secret ? ["--state", o.secret] : []),
    ...(o.nullok ? ["--nullok"] : []),
    ...(o.skewAdjust ? [] : ["--noskewadj"]),
    ...(o.store ? ["--store", o.store.url, ...(o.store.passwordFile ? ["--db-password-file", o.store.passwordFile] : []), "--db-key-file", o.store.keyFile] : []),
  ];
  changes.push({
    path: inRoot(o.root, `/etc/systemd/system/${SERVER_UNIT}`),
    next: serverUnit(o.node, o.otpgate, args, { stateFiles: o.secret, network: o.store !== undefined }),
    mode: 0o644,
  });
  return [
    `${BEGIN} (sshd: ${o.factors} via ${password ? "pam_unix and " : ""}otpgate server, written by otpgate setup ssh; --rollback restores the previous file)`,
    pamLine(["auth", "requisite", "pam_exec.so", "quiet", "quiet_log", "/bin/sh", "-c", PUBLICKEY_CHECK]),
    ...(password ? [pamLine(["auth", RADIUS_PASSWORD_CONTROL, "pam_unix.so"])] : []),
    pamLine(["auth", "required", "pam_radius_auth.so", `conf=${confPath}`, "prompt=Verification code", "force_prompt"], pamArgLabel),
    END,
  ];
}

/** The unit setup ssh --backend radius writes; OLD_RADIUS_UNIT is what older versions wrote (otpgate radius). */
export const SERVER_UNIT = "otpgate-server.service";
export const OLD_RADIUS_UNIT = "otpgate-radius.service";

/** The password module's control before pam_radius_auth: on anything but success the stack ends at once. */
export const RADIUS_PASSWORD_CONTROL = "success=ok default=die";
