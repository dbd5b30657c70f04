import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { StateFileError } from "../../src/core/errors.js";
import { PrivateFileError, readPrivateFile, type PrivateFileProblem, type PrivateFileRules } from "../../src/platform/private-file.js";
import { tempDir } from "../helpers/system.js";

const uid = process.geteuid?.() ?? 0;
const rules = { what: "a test file", maxBytes: 64, follow: false } as const;

function refused(path: string, problem: PrivateFileProblem, message: RegExp, extra: Partial<PrivateFileRules> = {}): void {
  assert.throws(
    () => readPrivateFile(path, { ...rules, ...extra }),
    (err: unknown) => err instanceof PrivateFileError && err.problem === problem && message.test(err.message),
    `${path}: ${problem}`,
  );
}

test("readPrivateFile: the bytes, and a version from the descriptor's fstat; null when missing (also below a file)", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "ok"), "hello\n", { mode: 0o600 });
  const file = readPrivateFile(join(dir, "ok"), rules)!;
  assert.equal(file.bytes.toString(), "hello\n");
  assert.match(file.version, /^\d+:\d+:6:\d+:\d+$/);
  assert.equal(Number(file.stat.size), 6);
  assert.equal(readPrivateFile(join(dir, "missing"), rules), null);
  assert.equal(readPrivateFile(join(dir, "ok", "below"), rules), null);
});

test("readPrivateFile refuses, naming what to do: symlink, directory, FIFO (without hanging), mode, owner, size", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "real"), "x", { mode: 0o600 });
  symlinkSync(join(dir, "real"), join(dir, "link"));
  refused(join(dir, "link"), "symlink", /is a symbolic link; otpgate never follows symlinks here: replace it with the file itself/);
  mkdirSync(join(dir, "dir"));
  refused(join(dir, "dir"), "directory", /is a directory/);
  spawnSync("mkfifo", [join(dir, "fifo")]);
  refused(join(dir, "fifo"), "not-regular", /is not a regular file; remove it/);
  writeFileSync(join(dir, "open"), "x", { mode: 0o644 });
  chmodSync(join(dir, "open"), 0o644);
  refused(join(dir, "open"), "mode", /has mode 0644; it must be readable by its owner only: chmod 600/);
  assert.equal(readPrivateFile(join(dir, "open"), { ...rules, allowedMode: 0o644 })!.bytes.toString(), "x", "allowedMode relaxes exactly that");
  writeFileSync(join(dir, "theirs"), "x", { mode: 0o600 });
  chownSync(join(dir, "theirs"), 4242, 4242);
  refused(join(dir, "theirs"), "owner", new RegExp(`belongs to uid 4242, not to uid ${uid}: chown ${uid}`));
  assert.equal(readPrivateFile(join(dir, "theirs"), { ...rules, ownerUid: null })!.bytes.toString(), "x", "ownerUid null: any owner");
  writeFileSync(join(dir, "big"), "y".repeat(65), { mode: 0o600 });
  refused(join(dir, "big"), "too-large", /is 65 bytes, larger than 64/);
  writeFileSync(join(dir, "empty"), "", { mode: 0o600 });
  refused(join(dir, "empty"), "empty", /is empty/, { minBytes: 1 });
});

test("readPrivateFile: the caller's messages and error class", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "open"), "x", { mode: 0o600 });
  chmodSync(join(dir, "open"), 0o640);
  assert.throws(
    () => readPrivateFile(join(dir, "open"), { ...rules, error: StateFileError, explain: (p) => (p === "mode" ? "mine: chmod it" : undefined) }),
    (err: unknown) => err instanceof StateFileError && err.message === "mine: chmod it",
  );
});
