// What `otpgate setup` writes, as pure functions of the current file contents: the sshd settings,
// the PAM auth block (the pam_exec pattern that works for sshd's setcred and for RStudio), and
// rserver.conf keys. Each is idempotent: planning again on its own output changes nothing.

import { existsSync } from "node:fs";
import { bypassBefore, isOtpgateLine, moduleName, readPamStack, type PamLine } from "../pam-stack.js";
import { pamDirsFor } from "../rstudio-chain.js";
import { cleanNodeCommand, pamLine } from "./pam-line.js";

export const BEGIN = "# otpgate: begin";
export const END = "# otpgate: end";

export type SshFactors = "key+code" | "key+password+code";

export interface PamLineOptions {
  /** Absolute path of node and of the otpgate launcher. */
  readonly node: string;
  readonly otpgate: string;
  /** Extra `otpgate pam` options (nullok, secret=..., password, require_publickey, noskewadj). */
  readonly pamArgs: readonly string[];
  /** Text shown before the Password: prompt (pam_echo), or null. */
  readonly hint: string | null;
}

/** Which setup option a word of otpgate's PAM line came from, for a refusal that says what to change. */
export const pamArgLabel = (word: string): string => (word.startsWith("secret=") ? "--secret" : word.startsWith("/") ? "the path" : "a value");

/**
 * The auth lines: pam_exec's failure becomes PAM_AUTH_ERR; ignore=1 covers sshd's setcred pass.
 * node runs under /usr/bin/env with the variables that could steer it removed (see pam-line.ts).
 */
export function authBlock(o: PamLineOptions, what: string): string[] {
  const lines = [`${BEGIN} (${what}; "otpgate setup ... --rollback" restores the previous file)`];
  if (o.hint) lines.push(pamLine(["auth", "optional", "pam_echo.so", ...o.hint.split(" ")]));
  const command = cleanNodeCommand(o.node, o.otpgate, ["pam", ...o.pamArgs]);
  lines.push(
    pamLine(["auth", "success=1 ignore=1 default=ignore", "pam_exec.so", "quiet", "quiet_log", "expose_authtok", ...command], pamArgLabel),
    "auth     requisite pam_deny.so",
    "auth     required  pam_permit.so",
    END,
  );
  return lines;
}

function withoutBlock(lines: string[]): { lines: string[]; at: number } {
  const start = lines.findIndex((l) => l.startsWith(BEGIN));
  if (start < 0) return { lines, at: -1 };
  let end = lines.indexOf(END, start);
  if (end < 0) end = start;
  return { lines: [...lines.slice(0, start), ...lines.slice(end + 1)], at: start };
}

const DISABLED = "#otpgate-disabled# ";

/**
 * An auth rule in any of PAM's spellings: `auth ...`, `-auth ...` (a module that may be missing),
 * `auth include|substack FILE`, and every `@include FILE` (the included file may hold auth rules;
 * putting otpgate's block before one that holds none changes nothing), or a line otpgate disabled.
 */
const AUTH_RULE = /^\s*(-?auth\s|@include\s|#otpgate-disabled#)/i;

/**
 * The PAM service file with otpgate's auth block. `replacePassword`: the password stack
 * (`@include common-auth`) is disabled, because the code replaces the password (key + code, or a
 * password checked by otpgate itself). Lines otpgate disabled are marked so rollback and reruns see them.
 * The block goes before the first auth rule in any spelling, so no earlier rule can end the stack.
 */
export function planPamService(current: string | null, block: string[], options: { readonly replacePassword: boolean; readonly tail: readonly string[] }): string {
  if (current === null) return [...block, ...options.tail].join("\n") + "\n";
  const hadNewline = current.endsWith("\n");
  const removed = withoutBlock(current.replace(/\n$/, "").split("\n"));
  let lines = removed.lines.map((l) => (l.startsWith(DISABLED) ? l.slice(DISABLED.length) : l));
  const isCommonAuth = (l: string) => /^\s*@include\s+common-auth\b/.test(l) || /^\s*-?auth\s+(include|substack)\s+common-auth\b/.test(l);
  if (options.replacePassword) lines = lines.map((l) => (isCommonAuth(l) ? DISABLED + l : l));
  const firstRule = lines.findIndex((l) => AUTH_RULE.test(l));
  let at = removed.at >= 0 && (firstRule < 0 || removed.at <= firstRule) ? removed.at : firstRule;
  if (at < 0) at = 0;
  const out = [...lines.slice(0, at), ...block, ...lines.slice(at)];
  return out.join("\n") + (hadNewline || out.length ? "\n" : "");
}

/**
 * The PAM service file without anything otpgate put there: its block removed and the lines it
 * disabled enabled again. When no auth rule is left (setup created the file around its block),
 * the system password stack (`@include common-auth`) takes the block's place.
 */
export function withoutOtpgate(current: string): string {
  const removed = withoutBlock(current.replace(/\n$/, "").split("\n"));
  const lines = removed.lines.map((l) => (l.startsWith(DISABLED) ? l.slice(DISABLED.length) : l));
  if (!lines.some((l) => AUTH_RULE.test(l) && !/^\s*@include\s+common-(account|session|session-noninteractive|password)\s*$/.test(l))) {
    lines.splice(Math.max(0, removed.at), 0, "@include common-auth");
  }
  return lines.join("\n") + "\n";
}

/** Does the file hold anything otpgate setup wrote (its block or a line it disabled)? */
export const hasOtpgateEdits = (text: string): boolean => text.split("\n").some((l) => l.startsWith(BEGIN) || l.startsWith(DISABLED));

export const SSHD_SETTINGS: readonly [string, string][] = [
  ["KbdInteractiveAuthentication", "yes"],
  ["AuthenticationMethods", "publickey,keyboard-interactive"],
  ["PasswordAuthentication", "no"],
  ["UsePAM", "yes"],
];

export function sshdDropIn(): string {
  return (
    [
      "# Written by otpgate setup ssh: public key, then a one-time code through PAM (keyboard-interactive).",
      '# "otpgate setup ssh --rollback" removes this file.',
      ...SSHD_SETTINGS.map(([k, v]) => `${k} ${v}`),
    ].join("\n") + "\n"
  );
}

/**
 * sshd_config without a usable Include of the drop-in directory: set the keywords in the main file.
 * sshd takes the first value of a keyword, so otpgate's block goes before any Match and the old
 * lines for these keywords (and the ChallengeResponseAuthentication alias) are disabled.
 */
export function planSshdMain(current: string): string {
  const keys = new Set([...SSHD_SETTINGS.map(([k]) => k.toLowerCase()), "challengeresponseauthentication"]);
  const removed = withoutBlock(current.replace(/\n$/, "").split("\n"));
  const lines = removed.lines.map((l) => {
    const restored = l.startsWith(DISABLED) ? l.slice(DISABLED.length) : l;
    const key = /^\s*([A-Za-z]+)\s/.exec(restored)?.[1]?.toLowerCase();
    return key && keys.has(key) ? DISABLED + restored : restored;
  });
  const block = [`${BEGIN} (written by otpgate setup ssh; --rollback restores the previous file)`, ...SSHD_SETTINGS.map(([k, v]) => `${k} ${v}`), END];
  let at = lines.findIndex((l) => /^\s*Match\s/i.test(l));
  if (at < 0) at = lines.length;
  return [...lines.slice(0, at), ...block, ...lines.slice(at)].join("\n") + "\n";
}

/** The drop-in directory sshd_config includes, if any (`Include <dir>/*.conf`). */
export function includedDropInDir(mainConfig: string): string | null {
  for (const line of mainConfig.split("\n")) {
    const m = /^\s*Include\s+(\S+)\/\*\.conf\s*$/i.exec(line);
    if (m) return m[1]!;
    if (/^\s*Match\s/i.test(line)) break;
  }
  return null;
}

/** Set `key=value` in rserver.conf, keeping every other line. */
export function setRserverOption(current: string | null, key: string, value: string): string {
  const lines = current === null || current === "" ? [] : current.replace(/\n$/, "").split("\n");
  const re = new RegExp(`^\\s*${key.replace(/[-]/g, "\\-")}\\s*=`);
  const at = lines.findIndex((l) => re.test(l));
  if (at >= 0) lines[at] = `${key}=${value}`;
  else lines.push(`${key}=${value}`);
  return lines.join("\n") + "\n";
}

export function removeRserverOption(current: string | null, key: string): string | null {
  if (current === null) return null;
  const re = new RegExp(`^\\s*${key.replace(/[-]/g, "\\-")}\\s*=`);
  return current
    .split("\n")
    .filter((l) => !re.test(l))
    .join("\n");
}

const PAM_DIRS = ["/lib/x86_64-linux-gnu/security", "/lib/security", "/usr/lib/x86_64-linux-gnu/security", "/usr/lib/security", "/lib64/security"];

/** Every rule line has a type, a control and a module that exists on this system. */
export function validatePamText(text: string, moduleExists: (name: string) => boolean = (name) => PAM_DIRS.some((d) => existsSync(`${d}/${name}`))): string | null {
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("@include")) continue;
    const m = /^-?(auth|account|password|session)\s+(\[[^\]]*\]|\S+)\s+(\S+)/.exec(line);
    if (!m) return `the PAM service file would contain an invalid line: "${line}"; every file was restored`;
    const module = m[3]!;
    // "-auth ..." tells libpam to skip a module that is not installed.
    if (!line.startsWith("-") && !["include", "substack"].includes(m[2]!) && !module.startsWith("/") && !moduleExists(module)) {
      return `the PAM service file uses ${module}, which is not installed here; every file was restored`;
    }
  }
  return null;
}

/**
 * The written service parsed back as libpam runs it (includes expanded): otpgate's line must be
 * there, and no rule before it may end the auth stack with success or jump over it.
 */
export function authOrderProblem(pamPath: string): string | null {
  const stack = readPamStack(pamPath, pamDirsFor(pamPath), "auth");
  // otpgate pam, or the RADIUS backend's publickey check / pam_radius_auth, whichever comes first
  const gate = (l: PamLine) => isOtpgateLine(l) || (moduleName(l) === "pam_exec.so" && l.args.some((a) => a.includes("SSH_AUTH_INFO_0"))) || moduleName(l) === "pam_radius_auth.so";
  const at = stack.findIndex(gate);
  if (at < 0) return `${pamPath} has no otpgate line after the change; every file was restored`;
  const bypass = bypassBefore(stack, at);
  if (!bypass) return null;
  return `in ${pamPath} "auth ${bypass.control} ${bypass.unreadableInclude ?? bypass.module}" (${bypass.file}) comes before otpgate's line: it can end the auth stack with success or jump over the code check, so the code might never be asked; every file was restored. Change that rule (required/requisite), or move it after otpgate's block`;
}
