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
import { closeSync, constants, linkSync, lstatSync, openSync, realpathSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UsageError } from "../../core/errors.js";
import { loadQrLib } from "../../platform/qr.js";

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
 * Why root must not write into `dir` (null when it may): every directory on the way to it, and the
 * ones its symbolic links lead through, must be root's, and any that others can write must be
 * sticky (like /tmp: others can create names there, but cannot remove or rename root's, so
 * nobody can swap a directory on the path for a symlink, nor remove root's temp file).
 */
export function rootWriteRefusal(dir: string): string | null {
  const abs = resolve(dir);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch (err) {
    return `cannot check ${abs} (${errno(err)})`;
  }
  for (const path of new Set([abs, real])) {
    let at = "/";
    for (const part of ["", ...path.split("/").filter(Boolean)]) {
      at = part ? (at === "/" ? `/${part}` : `${at}/${part}`) : "/";
      let st;
      try {
        st = lstatSync(at);
      } catch (err) {
        return `cannot check ${at} (${errno(err)})`;
      }
      if (st.uid !== 0) return `${at} belongs to uid ${st.uid}, who could swap what is below it for a symlink`;
      if (!st.isSymbolicLink() && (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
        return `${at} can be written by others (mode 0${(st.mode & 0o7777).toString(8)}) and is not sticky, so they could swap names in it`;
    }
  }
  return null;
}

/** Only root can create names in `dir` (root enrolling someone else writes there as root). */
function rootAlone(dir: string): boolean {
  if (rootWriteRefusal(dir) !== null) return false;
  try {
    return (lstatSync(realpathSync(dir)).mode & 0o022) === 0;
  } catch {
    return false;
  }
}

const refusalMessage = (dir: string, why: string) => `root does not write QR files into ${resolve(dir)}: ${why}; choose a directory only root can write (e.g. /root), or /tmp itself`;

/** Who writes each file, and whether it can be written at all; throws (nothing written) when not. */
export function planQrTargets(
  files: { readonly png?: string | undefined; readonly svg?: string | undefined },
  o: { readonly overwrite: boolean; readonly rootForOther: boolean; readonly asRoot: AsRoot; readonly user: string },
): QrTarget[] {
  const targets: QrTarget[] = [];
  for (const [kind, path] of [
    ["png", files.png],
    ["svg", files.svg],
  ] as const) {
    if (path === undefined) continue;
    const asRoot = o.rootForOther && rootAlone(dirname(path));
    const run = asRoot ? o.asRoot : <T>(fn: () => T) => fn();
    run(() => {
      if ((process.geteuid?.() ?? 1) === 0) {
        const refusal = rootWriteRefusal(dirname(path));
        if (refusal) throw new UsageError(`${refusalMessage(dirname(path), refusal)}; nothing was written`);
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
          for (let off = 0; off < data.length;) off += writeSync(fd, data, off);
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
