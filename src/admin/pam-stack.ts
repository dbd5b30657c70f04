// Reading PAM service files as libpam does, for doctor: one line per module with its type,
// control, module and arguments, `@include` and `TYPE include|substack` expanded; and the command
// of otpgate's pam_exec line (node, launcher and options, through /usr/bin/env when it is used).

import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";

export interface PamLine {
  readonly type: string;
  readonly control: string;
  /** Module path as written (pam_exec.so, /lib/.../pam_unix.so). */
  readonly module: string;
  readonly args: readonly string[];
  /** The file the line comes from. */
  readonly file: string;
  /** An include whose file could not be read: doctor cannot tell what it does. */
  readonly unreadableInclude?: string;
}

/** Words of a PAM line: `[...]` controls and `[...]` arguments may contain spaces. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /\[(?:[^\]\\]|\\.)*\]|\S+/g;
  for (const m of line.matchAll(re)) out.push(m[0]);
  return out;
}

const toLines = (text: string): string[] => text.replace(/\\\n/g, " ").split("\n");

function readLines(path: string): string[] | null {
  try {
    return toLines(readFileSync(path, "utf8"));
  } catch {
    return null;
  }
}

/**
 * Every module line of a service, includes expanded (depth-limited like libpam). A relative include
 * is looked up in each of `pamDirs` in turn (under --root: the root's /etc/pam.d, then the host's).
 */
export function readPamStack(path: string, pamDirs: string | readonly string[], onlyType?: string, depth = 0): PamLine[] {
  const lines = readLines(path);
  return lines === null ? [] : pamStackOfLines(lines, path, pamDirs, onlyType, depth);
}

/** The stack of a service file's text (not yet written), includes read from `pamDirs`. */
export function pamStackOfText(text: string, file: string, pamDirs: string | readonly string[], onlyType?: string): PamLine[] {
  return pamStackOfLines(toLines(text), file, pamDirs, onlyType, 0);
}

function pamStackOfLines(lines: readonly string[], path: string, pamDirs: string | readonly string[], onlyType: string | undefined, depth: number): PamLine[] {
  if (depth > 8) return [];
  const dirs = typeof pamDirs === "string" ? [pamDirs] : pamDirs;
  const out: PamLine[] = [];
  const include = (name: string, type: string | undefined): void => {
    const candidates = name.startsWith("/") ? [name] : dirs.map((d) => join(d, name));
    const file = candidates.find((f) => existsSync(f)) ?? candidates[0]!;
    const inner = readLines(file);
    if (inner === null) out.push({ type: type ?? "auth", control: "include", module: "", args: [], file: path, unreadableInclude: file });
    else out.push(...pamStackOfLines(inner, file, pamDirs, type, depth + 1));
  };
  for (const raw of lines) {
    const text = raw.replace(/#.*/, "").trim();
    if (!text) continue;
    const w = words(text);
    if (w[0] === "@include") {
      if (w[1]) include(w[1], onlyType);
      continue;
    }
    const type = (w[0] ?? "").replace(/^-/, "").toLowerCase();
    if (onlyType && type !== onlyType) continue;
    const control = w[1] ?? "";
    if (control === "include" || control === "substack") {
      if (w[2]) include(w[2], type);
      continue;
    }
    out.push({ type, control, module: w[2] ?? "", args: w.slice(3), file: path });
  }
  return out;
}

/**
 * The first rule before index `at` of an auth stack that can end it with success or jump over the
 * rule at `at`: `sufficient`, `success=done`, or any `value=N` jump that lands after `at` (a
 * failing module jumping over the code check is a bypass too). An unreadable include counts: unknown.
 */
export function bypassBefore(stack: readonly PamLine[], at: number): PamLine | null {
  for (let i = 0; i < at; i++) {
    const l = stack[i]!;
    if (l.unreadableInclude) return l;
    if (l.control === "sufficient") return l;
    const actions = /^\[(.*)\]$/.exec(l.control)?.[1];
    if (actions === undefined) continue;
    for (const pair of actions.trim().split(/\s+/)) {
      const [key, value = ""] = pair.split("=");
      if (key === "success" && value === "done") return l;
      if (/^\d+$/.test(value) && i + Number(value) + 1 > at) return l;
    }
  }
  return null;
}

export const moduleName = (l: PamLine): string => basename(l.module);

export function isOtpgateLine(l: PamLine): boolean {
  return moduleName(l) === "pam_exec.so" && otpgateCommand(l) !== null;
}

export interface OtpgateCommand {
  /** /usr/bin/env when the command runs through it. */
  readonly env: string | null;
  /** Variables env removes (-u NAME, --unset=NAME); "*" for env -i. */
  readonly unset: readonly string[];
  readonly node: string;
  readonly launcher: string;
  /** Words after `pam`: otpgate pam's options. */
  readonly options: readonly string[];
}

/** The command of a pam_exec line running `otpgate pam`, or null when the line runs something else. */
export function otpgateCommand(l: PamLine): OtpgateCommand | null {
  if (moduleName(l) !== "pam_exec.so") return null;
  const start = l.args.findIndex((a) => a.startsWith("/"));
  if (start < 0) return null;
  return otpgateInvocation(l.args.slice(start), "pam");
}

/** `[env ...] node .../otpgate... SUBCOMMAND options` from a command line's words, or null. */
export function otpgateInvocation(words: readonly string[], subcommand: string): OtpgateCommand | null {
  let cmd = [...words];
  if (cmd.length === 0) return null;
  let env: string | null = null;
  const unset: string[] = [];
  if (basename(cmd[0]!) === "env") {
    env = cmd[0]!;
    let i = 1;
    for (; i < cmd.length; i++) {
      const a = cmd[i]!;
      if (a === "-i" || a === "--ignore-environment" || a === "-") unset.push("*");
      else if (a === "-u" || a === "--unset") unset.push(cmd[++i] ?? "");
      else if (a.startsWith("--unset=")) unset.push(a.slice(8));
      else if (/^-u./.test(a)) unset.push(a.slice(2));
      else if (a === "--") {
        i++;
        break;
      } else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) continue;
      else if (a.startsWith("-")) continue;
      else break;
    }
    cmd = cmd.slice(i);
  }
  const pam = cmd.findIndex((w, i) => i >= 1 && w === subcommand);
  if (pam < 0 || !/otpgate/.test(cmd[pam - 1] ?? "")) return null;
  // `otpgate.cjs pam` without node runs through the launcher's #! line: no node named
  return { env, unset, node: pam >= 2 ? cmd[0]! : "", launcher: cmd[pam - 1]!, options: cmd.slice(pam + 1) };
}
