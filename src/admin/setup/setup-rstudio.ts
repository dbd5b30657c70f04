// otpgate setup rstudio: /etc/pam.d/rstudio and /etc/rstudio/rserver.conf. Two ways to log in:
//  code           user name + one-time code in the password box (PAM stack with otpgate pam);
//  password+code  password immediately followed by the code in the password box: rserver runs
//                 otpgate's helper (auth-pam-helper-path), which checks the code and hands the
//                 password to RStudio's own rserver-pam.

import { existsSync } from "node:fs";
import { SetupError, type FileChange } from "./apply.js";
import { cleanNodeCommand } from "./pam-line.js";
import { inRoot, readIfExists as read } from "./paths.js";
import { authBlock, authOrderProblem, hasOtpgateEdits, planPamService, removeRserverOption, setRserverOption, validatePamText, withoutOtpgate } from "./plan.js";
import { refuseForeignTarget } from "./targets.js";
import { rstudioChainProblems } from "../rstudio-chain.js";

export type RstudioFactors = "code" | "password+code";

export interface RstudioSetupOptions {
  readonly root: string;
  readonly service: string;
  readonly factors: RstudioFactors;
  readonly nullok: boolean;
  readonly secret?: string | undefined;
  readonly node: string;
  readonly otpgate: string;
  /** RStudio's own PAM helper (password+code). */
  readonly rserverPam: string;
  /** Keep learning clock skew from codes (off by default: noskewadj, and --noskewadj for the helper). */
  readonly skewAdjust?: boolean | undefined;
  /** sshd binaries whose running processes' PAM services setup must not write (default /usr/sbin/sshd). */
  readonly sshd?: readonly string[] | undefined;
}

export const RSERVER_CONF = "/etc/rstudio/rserver.conf";
export const HELPER_PATH = "/usr/local/lib/otpgate/rserver-pam-otpgate";

export function rstudioManifest(root: string): string {
  return inRoot(root, "/etc/otpgate/setup-rstudio.json");
}

export function helperScript(o: RstudioSetupOptions): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // --noskewadj unless --skew-adjust: see the help of setup (skew learning lets seen codes be replayed).
  const args = ["rstudio-helper", "--rserver-pam", o.rserverPam, ...(o.secret ? ["--secret", o.secret] : []), ...(o.nullok ? ["--nullok"] : []), ...(o.skewAdjust ? [] : ["--noskewadj"]), "--"];
  // rserver's environment must not steer the root node process either: the same env -u as the PAM line.
  const command = cleanNodeCommand(o.node, o.otpgate, args).map(q).join(" ");
  return `#!/bin/sh\n# Written by otpgate setup rstudio (password+code): checks the trailing one-time code, then\n# hands the password to RStudio's own PAM helper. rserver runs it as root: keep it root-owned.\nexec ${command} "$@"\n`;
}

/**
 * With factors "code" the code is the only thing RStudio checks and common-auth is off, so
 * otpgate's nullok ("no state file: let through") would let anyone who is not enrolled in with
 * any password. pam_exec cannot hand an unenrolled user on to the password stack (it has no
 * PAM_IGNORE: every non-zero exit is PAM_SYSTEM_ERR, and a "not enrolled" exit code would be
 * indistinguishable from a failure), so that combination is refused.
 */
export function rstudioOptionProblem(o: Pick<RstudioSetupOptions, "factors" | "nullok">): string | null {
  if (o.factors === "code" && o.nullok) {
    return "--nullok cannot be used for rstudio with --factors code: the code is the only check there, so a user who is not enrolled would get in with any password. Enroll every RStudio user first, or use --factors password+code (the password is checked by RStudio's own PAM stack)";
  }
  return null;
}

/** The first line of every helper script setup writes: what lets a later run recognise (and remove) it. */
const HELPER_MARK = "# Written by otpgate setup rstudio";

/**
 * The whole target state of every file setup rstudio owns, computed from what is there now,
 * whatever an earlier run left: switching factors removes the other mode's edits.
 *  code:          otpgate's block in the PAM service (common-auth disabled), no helper path in
 *                 rserver.conf, otpgate's helper script removed;
 *  password+code: the PAM service without anything otpgate put there (its block removed, the
 *                 lines it disabled enabled again), the helper script, the helper path.
 */
export function planRstudio(o: RstudioSetupOptions): FileChange[] {
  const refused = rstudioOptionProblem(o);
  if (refused) throw new SetupError(refused);
  refuseForeignTarget("rstudio", o.root, o.service, o.sshd ?? ["/usr/sbin/sshd"]);
  const pamPath = inRoot(o.root, `/etc/pam.d/${o.service}`);
  const confPath = inRoot(o.root, RSERVER_CONF);
  const helperPath = inRoot(o.root, HELPER_PATH);
  const pam = read(pamPath);
  const conf = read(confPath);
  const changes: FileChange[] = [];
  let nextConf = setRserverOption(conf, "auth-pam-require-password-prompt", "0");
  if (o.factors === "code") {
    const pamArgs = [...(o.secret ? [`secret=${o.secret}`] : []), ...(o.skewAdjust ? [] : ["noskewadj"])];
    const block = authBlock({ node: o.node, otpgate: o.otpgate, pamArgs, hint: null }, "rstudio: user name + code, written by otpgate setup rstudio");
    changes.push({ path: pamPath, next: planPamService(pam, block, { replacePassword: true, tail: ["@include common-account", "@include common-session"] }), mode: 0o644 });
    nextConf = removeRserverOption(nextConf, "auth-pam-helper-path") ?? nextConf;
    const helper = read(helperPath);
    if (helper !== null && helper.split("\n")[1]?.startsWith(HELPER_MARK)) changes.push({ path: helperPath, next: null });
  } else {
    changes.push({ path: pamPath, next: pam === null ? "@include common-auth\n@include common-account\n@include common-session\n" : hasOtpgateEdits(pam) ? withoutOtpgate(pam) : pam, mode: 0o644 });
    changes.push({ path: helperPath, next: helperScript(o), mode: 0o755 });
    nextConf = setRserverOption(nextConf, "auth-pam-helper-path", HELPER_PATH);
  }
  changes.push({ path: confPath, next: nextConf, mode: 0o644 });
  return changes;
}

/**
 * Checks before RStudio's files are kept: the helper's target exists; every PAM module exists;
 * the chain end to end (rstudio-chain.ts): for password+code the service rserver-pam runs checks a
 * password and holds no otpgate code line, for code it holds otpgate's line and no helper is set.
 */
export function validateRstudio(o: RstudioSetupOptions, pamText: string | null): string | null {
  if (o.factors === "password+code" && !existsSync(o.rserverPam)) {
    return `RStudio's PAM helper ${o.rserverPam} does not exist (is RStudio Server installed?); pass --rserver-pam PATH; every file was restored`;
  }
  const invalid = pamText === null ? null : validatePamText(pamText);
  if (invalid) return invalid;
  const pamPath = inRoot(o.root, `/etc/pam.d/${o.service}`);
  if (o.factors === "code") {
    const problem = authOrderProblem(pamPath);
    if (problem) return problem;
  }
  const chain = rstudioChainProblems(o.factors, pamPath, inRoot(o.root, RSERVER_CONF));
  return chain.length ? `after the change RStudio's sign-in would not check ${o.factors}, so every file was restored:\n${chain.map((p) => `  - ${p}`).join("\n")}` : null;
}
