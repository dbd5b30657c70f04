// The one writer of QR files (--qr-png/--qr-svg) for enroll and qr, prepared so that a failure
// changes nothing: checked first, then created as temporary files (O_EXCL, O_NOFOLLOW, mode 0600,
// an unguessable name in the target's directory), and only renamed (or, without -f, linked) into
// place at the end: a planted symlink or file at the target is replaced, never written through.
// Who writes them: the user being enrolled (as before), except that root enrolling someone else
// writes into a directory that is root's alone (/root, as in the README) as root. Whenever root
// writes (root enrolling itself, otpgate qr as root), the directory must be one nobody else can
// swap: root's alone, or a sticky root-owned directory such as /tmp under root-only parents
// (others can create names there, but cannot remove or rename root's).

import { randomBytes } from "node:crypto";
import { closeSync, constants, linkSync, lstatSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UsageError } from "../../core/errors.js";
import { loadQrLib } from "../../platform/qr.js";
import { pathProblems } from "../../platform/trusted-path.js";

export interface QrTarget {
  readonly path: string;
  readonly kind: "png" | "svg";
  /** Created with root's rights (root enrolling someone else, into a root-only directory). */
  readonly asRoot: boolean;
  /** -f: an existing file is replaced; otherwise one that appeared meanwhile is kept. */
  readonly replace: boolean;
}

/** Runs fn with root's effective uid (undoing enroll's switch to the user), then switches back. */
export type AsRoot = <T>(fn: () => T) => T;

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** Runs fn as the process is (no switch): for commands that write as whoever runs them. */
export const asItself: AsRoot = (fn) => fn();

/**
 * Why root must not write into `dir` (null when it may): someone other than root could swap the
 * directory, or a directory above it, for a symlink and make root create files elsewhere.
 */
export function rootWriteRefusal(dir: string): string | null {
  const abs = resolve(dir);
  if (pathProblems(abs).length === 0) return null;
  try {
    const st = lstatSync(abs);
    const sticky = st.isDirectory() && st.uid === 0 && (st.mode & 0o1000) !== 0;
    if (sticky && pathProblems(dirname(abs)).length === 0) return null;
  } catch {
    // reported below
  }
  const first = pathProblems(abs)[0]!;
  return `root does not write QR files into ${abs}: ${first.path} is ${first.reason}, so someone else could swap it for a symlink; choose a directory only root can write (e.g. /root) or /tmp itself`;
}

/** Who writes each file, and whether it can be written at all; throws (nothing written) when not. */
export function planQrTargets(files: { readonly png?: string | undefined; readonly svg?: string | undefined }, o: { readonly overwrite: boolean; readonly rootForOther: boolean; readonly asRoot: AsRoot; readonly user: string }): QrTarget[] {
  const targets: QrTarget[] = [];
  for (const [kind, path] of [["png", files.png], ["svg", files.svg]] as const) {
    if (path === undefined) continue;
    const asRoot = o.rootForOther && pathProblems(dirname(path)).length === 0;
    const run = asRoot ? o.asRoot : <T>(fn: () => T) => fn();
    run(() => {
      if ((process.geteuid?.() ?? 1) === 0) {
        const refusal = rootWriteRefusal(dirname(path));
        if (refusal) throw new UsageError(`${refusal}; nothing was written`);
      }
      try {
        const st = lstatSync(path);
        if (!o.overwrite) throw new UsageError(`${path} already exists; choose another file or pass -f`);
        if (!st.isFile()) throw new UsageError(`${path} exists and is not a regular file; choose another file`);
      } catch (err) {
        if (err instanceof UsageError) throw err;
        if (errno(err) !== "ENOENT") throw new UsageError(`cannot check ${path} (${errno(err)})`);
      }
      const probe = `${path}~otpgate-probe-${randomBytes(6).toString("hex")}`;
      try {
        closeSync(openSync(probe, CREATE, 0o600));
        unlinkSync(probe);
      } catch (err) {
        const code = errno(err);
        throw new UsageError(
          code === "ENOENT"
            ? `the directory ${dirname(path)} does not exist; create it or choose another file for --qr-${kind}; nothing was written`
            : `${asRoot ? "root" : o.user} cannot create ${path} (${code}); the QR file is written as ${o.user} unless the directory is root's alone: choose a directory ${o.user} can write, or one only root can write; nothing was written`,
        );
      }
    });
    targets.push({ path, kind, asRoot, replace: o.overwrite });
  }
  return targets;
}

export interface PreparedQr {
  /** Moves every file into place (after the state file is written); returns the paths. */
  commit(): string[];
  /** Removes every temporary file (the state file could not be written). */
  discard(): void;
}

/** Renders the images and writes them to temporary files next to their targets (mode 0600). */
export async function prepareQrFiles(targets: readonly QrTarget[], uri: string, asRoot: AsRoot, context: "enroll" | "qr" = "enroll"): Promise<PreparedQr> {
  const lib = targets.length ? await loadQrLib() : null;
  const temps: { target: QrTarget; temp: string }[] = [];
  const run = (t: QrTarget) => (t.asRoot ? asRoot : <T>(fn: () => T) => fn());
  const discard = () => {
    for (const { target, temp } of temps) {
      run(target)(() => {
        try {
          unlinkSync(temp);
        } catch {
          // already gone
        }
      });
    }
  };
  try {
    for (const target of targets) {
      const data = Buffer.from(target.kind === "png" ? await lib!.qrPng(uri) : await lib!.qrSvg(uri));
      const temp = `${target.path}~otpgate-${randomBytes(6).toString("hex")}`;
      run(target)(() => {
        let fd: number;
        try {
          fd = openSync(temp, CREATE, 0o600);
        } catch (err) {
          throw new UsageError(`cannot write ${target.path} (${errno(err)}); nothing was written`);
        }
        temps.push({ target, temp });
        try {
          for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
        } catch (err) {
          throw new UsageError(`cannot write ${target.path} (${errno(err)}); nothing was written`);
        } finally {
          closeSync(fd);
        }
      });
    }
  } catch (err) {
    discard();
    throw err;
  }
  return {
    commit: () =>
      temps.map(({ target, temp }) =>
        run(target)(() => {
          try {
            if (target.replace) renameSync(temp, target.path);
            else {
              linkSync(temp, target.path); // fails instead of replacing a file that appeared meanwhile
              unlinkSync(temp);
            }
          } catch (err) {
            throw new UsageError(
              context === "enroll"
                ? `the state file was saved, but ${target.path} could not be written (${errno(err)}); show the QR code again with otpgate qr`
                : `${target.path} could not be written (${errno(err)}): ${errno(err) === "EEXIST" ? "it appeared meanwhile; choose another file or pass -f" : "choose another file"}`,
            );
          }
          return target.path;
        }),
      ),
    discard,
  };
}
