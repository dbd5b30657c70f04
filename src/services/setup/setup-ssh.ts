// otpgate setup ssh: sshd settings (a drop-in when sshd_config includes one, else the main file)
// and the PAM stack, with a lock-out guard, validation by sshd itself, and rollback.

import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { OtpgateError } from "../../core/errors.js";
import { lookupUserByName } from "../../platform/users.js";
import { FileAccountStore } from "../../stores/file-store.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "../../stores/secret-path.js";
import { type FileChange } from "./apply.js";
import { inRoot, readIfExists as read } from "./paths.js";
import { BEGIN, END, authBlock, includedDropInDir, planPamService, planSshdMain, sshdDropIn, validatePamText, type SshFactors } from "./plan.js";
import { randomBytes } from "node:crypto";

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
  const mainPath = inRoot(o.root, SSHD_CONFIG);
  const main = read(mainPath);
  if (main === null) throw new OtpgateError(`${mainPath} does not exist: is openssh-server installed? (use --root for another filesystem)`);
  const changes: FileChange[] = [];
  const dropInDir = includedDropInDir(main);
  if (dropInDir) {
    // An Include path is absolute on the target system; under --root it may already point inside it.
    const dir = dropInDir.startsWith(o.root) ? dropInDir : inRoot(o.root, dropInDir);
    changes.push({ path: join(dir, DROP_IN_NAME), next: sshdDropIn(), mode: 0o644 });
  } else {
    changes.push({ path: mainPath, next: planSshdMain(main) });
  }
  const pamPath = inRoot(o.root, `/etc/pam.d/${o.service}`);
  const password = o.factors === "key+password+code";
  const hint = !o.hint ? null : password ? "Type your password immediately followed by your 6-digit code at the Password prompt." : "Verification code required for %u. Type the code from your authenticator app at the Password prompt.";
  const pamArgs = [...(o.secret ? [`secret=${o.secret}`] : []), ...(o.nullok ? ["nullok"] : []), ...(password ? ["password"] : [])];
  const block =
    o.backend === "radius"
      ? radiusBlock(o, changes)
      : authBlock({ node: o.node, otpgate: o.otpgate, pamArgs, hint }, `sshd: ${o.factors}, written by otpgate setup ssh`);
  const tail = ["@include common-account", "@include common-session", "@include common-password"];
  changes.push({ path: pamPath, next: planPamService(read(pamPath), block, { replacePassword: true, tail }), mode: 0o644 });
  return changes;
}

/** Refuse changes that would lock the admin out: the admin must be enrolled and have a key. */
export function lockoutProblems(admin: string | undefined, secret: string | undefined): string[] {
  if (admin === undefined) {
    return ["no admin to protect from a lock-out: run it with sudo (SUDO_USER) or pass --admin NAME (or --allow-unenrolled if you know what you are doing)"];
  }
  const user = lookupUserByName(admin);
  if (!user) return [`the admin account "${admin}" does not exist`];
  const problems: string[] = [];
  const path = expandSecretPath(secret ?? DEFAULT_SECRET_SPEC, { name: user.name, home: user.home || null });
  try {
    const text = new FileAccountStore({ path, owner: { uid: user.uid, name: user.name }, strictOwner: true, allowedPerm: 0o600 }).peek();
    if (text === null) problems.push(`${admin} is not enrolled (no ${path}): run "otpgate enroll --user ${admin}" first, or ${admin} could not log in after the change`);
  } catch (err) {
    problems.push(`${admin}'s state file cannot be used: ${(err as Error).message}`);
  }
  const keys = join(user.home, ".ssh/authorized_keys");
  if (!existsSync(keys) || statSync(keys).size === 0) problems.push(`${admin} has no ${keys}: with AuthenticationMethods publickey,keyboard-interactive a key is required`);
  return problems;
}

/** sshd -t on the new configuration, then sshd -T to confirm the settings are the effective ones. */
export function validateSshd(o: SshSetupOptions, admin: string | undefined): string | null {
  const pamProblem = validatePamText(read(inRoot(o.root, `/etc/pam.d/${o.service}`)) ?? "");
  if (pamProblem) return pamProblem;
  const config = inRoot(o.root, SSHD_CONFIG);
  if (!existsSync(o.sshd)) return `cannot validate: ${o.sshd} does not exist (pass --sshd PATH)`;
  const t = spawnSync(o.sshd, ["-t", "-f", config], { encoding: "utf8" });
  if (t.status !== 0) return `sshd -t rejected the new configuration, so every file was restored:\n${(t.stderr || t.stdout).trim()}`;
  const T = spawnSync(o.sshd, ["-T", "-f", config, "-C", `user=${admin ?? "root"},host=localhost,addr=127.0.0.1`], { encoding: "utf8" });
  if (T.status !== 0) return `sshd -T failed, so every file was restored:\n${(T.stderr || T.stdout).trim()}`;
  const effective = T.stdout.toLowerCase();
  const wanted = ["kbdinteractiveauthentication yes", "authenticationmethods publickey,keyboard-interactive", "passwordauthentication no", "usepam yes"];
  const missing = wanted.filter((w) => !effective.split("\n").includes(w));
  if (missing.length) {
    return `after the change sshd's effective settings still differ (${missing.join("; ")}): an earlier line or drop-in wins (sshd takes the first value); every file was restored. Check "sshd -T" and the files in sshd_config.d`;
  }
  return null;
}

export function pathsExist(node: string, otpgate: string): string | null {
  for (const p of [node, otpgate]) {
    if (!p.startsWith("/")) return `${p} is not an absolute path; pam_exec runs commands without a PATH search`;
    if (!existsSync(p)) return `${p} does not exist`;
  }
  return null;
}

/** The RADIUS backend: shared secret, pam_radius_auth's server file, a systemd unit, the PAM lines. */
function radiusBlock(o: SshSetupOptions, changes: FileChange[]): string[] {
  const secretPath = inRoot(o.root, "/etc/otpgate/radius.secret");
  const confPath = inRoot(o.root, "/etc/otpgate/pam_radius.conf");
  const secret = read(secretPath)?.trim() || randomBytes(24).toString("hex");
  changes.push({ path: secretPath, next: secret + "\n", mode: 0o600 });
  changes.push({ path: confPath, next: `# Written by otpgate setup ssh --backend radius: where pam_radius_auth.so asks for codes.\n127.0.0.1:${o.radiusPort} ${secret} 3\n`, mode: 0o600 });
  changes.push({
    path: inRoot(o.root, "/etc/systemd/system/otpgate-radius.service"),
    next: `[Unit]\nDescription=otpgate one-time code checker for pam_radius_auth (loopback RADIUS)\nBefore=ssh.service\n\n[Service]\nExecStart=${o.node} ${o.otpgate} radius --listen 127.0.0.1:${o.radiusPort} --secret-file ${secretPath}${o.secret ? ` --state ${o.secret}` : ""}${o.nullok ? " --nullok" : ""}\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n`,
    mode: 0o644,
  });
  return [
    `${BEGIN} (sshd: key+code via otpgate radius, written by otpgate setup ssh; --rollback restores the previous file)`,
    `auth     required  pam_radius_auth.so conf=${confPath} [prompt=Verification code] force_prompt`,
    END,
  ];
}
