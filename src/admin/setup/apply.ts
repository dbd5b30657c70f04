// Applying a set of file changes safely: unified diff for --dry-run, timestamped backups, atomic
// writes, a validation step that restores everything when it fails, a manifest of what was changed
// so --rollback restores the original files byte for byte.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { OtpgateError } from "../../core/errors.js";

export class SetupError extends OtpgateError {}

export interface FileChange {
  readonly path: string;
  /** New content, or null to delete the file. */
  readonly next: string | null;
  /** Mode for a new file (existing files keep theirs). */
  readonly mode?: number;
}

interface ManifestEntry {
  readonly path: string;
  /** Backup of the file before otpgate first changed it, or null when otpgate created it. */
  readonly backup: string | null;
  /** sha256 of what setup last wrote there ("absent" when it removed the file); missing in older manifests. */
  readonly written?: string;
}

interface Manifest {
  readonly created: string;
  readonly entries: ManifestEntry[];
}

/** The bytes setup writes for a planned content: UTF-8, what node decodes argv and files with. */
const bytesOf = (content: string): Buffer => Buffer.from(content, "utf8");

const readBytes = (path: string): Buffer | null => (existsSync(path) ? readFileSync(path) : null);

/** Does the file hold exactly the bytes of `content` (null: absent)? */
const holds = (path: string, content: string | null): boolean => {
  const bytes = readBytes(path);
  return content === null ? bytes === null : bytes !== null && bytes.equals(bytesOf(content));
};

/** sha256 of the bytes (same values as older manifests, which hashed the bytes as latin1 strings). */
const fingerprint = (bytes: Buffer | null): string => (bytes === null ? "absent" : createHash("sha256").update(bytes).digest("hex"));

function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

/** Write the bytes atomically, then read them back: what is on disk must be exactly what was meant. */
function writeAtomic(path: string, bytes: Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.otpgate-${process.pid}`);
  const fd = openSync(tmp, "wx", mode);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, path);
  if (!readFileSync(path).equals(bytes)) throw new SetupError(`${path} does not hold what setup wrote (read back differs); every file was restored`);
}

function copyExact(from: string, to: string): void {
  writeAtomic(to, readFileSync(from), statSync(from).mode & 0o7777);
}

/** Unified diff of every change (diff -u), for --dry-run. */
export function diffChanges(changes: readonly FileChange[]): string {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-diff-"));
  try {
    let out = "";
    changes.forEach((c, i) => {
      const a = join(dir, `a${i}`);
      const b = join(dir, `b${i}`);
      writeFileSync(a, readBytes(c.path) ?? "");
      writeFileSync(b, bytesOf(c.next ?? ""));
      const r = spawnSync("diff", ["-u", "--label", existsSync(c.path) ? c.path : "/dev/null", "--label", c.next === null ? "/dev/null" : c.path, a, b], { encoding: "utf8" });
      out += r.stdout;
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function pendingChanges(changes: readonly FileChange[]): FileChange[] {
  return changes.filter((c) => !holds(c.path, c.next));
}

export interface ApplyOptions {
  readonly manifest: string;
  readonly now: Date;
  /** Checks the result; returns an error message when it must be undone. */
  readonly validate: () => string | null;
}

/** Apply the pending changes; on a validation failure everything is restored and SetupError thrown. */
export function applyChanges(changes: readonly FileChange[], options: ApplyOptions): { backups: string[] } {
  const manifest: Manifest = existsSync(options.manifest) ? (JSON.parse(readFileSync(options.manifest, "utf8")) as Manifest) : { created: options.now.toISOString(), entries: [] };
  const undo: (() => void)[] = [];
  const backups: string[] = [];
  try {
    for (const c of changes) {
      let backup: string | null = null;
      if (existsSync(c.path)) {
        backup = `${c.path}.otpgate-backup-${stamp(options.now)}`;
        for (let n = 1; existsSync(backup); n++) backup = `${c.path}.otpgate-backup-${stamp(options.now)}-${n}`;
        copyExact(c.path, backup);
        backups.push(backup);
        const mode = statSync(c.path).mode & 0o7777;
        const saved = backup;
        undo.push(() => copyExact(saved, c.path));
        if (c.next === null) unlinkSync(c.path);
        else writeAtomic(c.path, bytesOf(c.next), mode);
      } else {
        undo.push(() => rmSync(c.path, { force: true }));
        if (c.next !== null) writeAtomic(c.path, bytesOf(c.next), c.mode ?? 0o644);
      }
      const known = manifest.entries.findIndex((e) => e.path === c.path);
      // The first backup is kept (it is what rollback restores); the fingerprint follows every write.
      if (known < 0) manifest.entries.push({ path: c.path, backup, written: fingerprint(c.next === null ? null : bytesOf(c.next)) });
      else manifest.entries[known] = { ...manifest.entries[known]!, written: fingerprint(c.next === null ? null : bytesOf(c.next)) };
    }
    const problem = options.validate();
    if (problem) throw new SetupError(problem);
  } catch (err) {
    for (const u of undo.reverse()) u();
    throw err instanceof SetupError ? err : new SetupError(`could not write the configuration (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); every file was restored`);
  }
  writeAtomic(options.manifest, bytesOf(JSON.stringify(manifest, null, 2) + "\n"), 0o600);
  return { backups };
}

/**
 * Restore every file of the manifest to what it was before otpgate changed it. A file that changed
 * since setup wrote it (an admin's later edit) is not overwritten unless `force`: nothing is restored.
 */
export function rollback(manifestPath: string, options: { readonly force?: boolean } = {}): string[] {
  if (!existsSync(manifestPath)) throw new SetupError(`nothing to roll back: ${manifestPath} does not exist (setup was not run, or was already rolled back)`);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as Manifest;
  const changed = manifest.entries.filter((e) => e.written !== undefined && fingerprint(readBytes(e.path)) !== e.written).map((e) => e.path);
  if (changed.length && !options.force) {
    throw new SetupError(
      `${changed.map((p) => `${p} changed since otpgate setup wrote it`).join("; ")}: rollback would discard those edits, so nothing was restored. Save what you need, then run it again with --force`,
    );
  }
  const restored: string[] = [];
  for (const e of manifest.entries) {
    if (e.backup === null) rmSync(e.path, { force: true });
    else copyExact(e.backup, e.path);
    restored.push(e.path);
  }
  unlinkSync(manifestPath);
  return restored;
}
