// Red team rt1, Finding 3: writeNewStateFile (enrollment, also through the resident server's
// /v1/enroll) swept the user's directory for stale temp files with readdirSync, so a user with
// 400,000 files in ~ stalled the server's only thread for everyone. A resident process must never
// list a user's directory: the temp file has one fixed name (O_EXCL), and a leftover of a killed
// writer is removed by that name. Structural test: readdirSync and opendirSync are spied on.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { StateFileError } from "../../src/core/errors.js";
import { newStateTempPath, writeNewStateFile } from "../../src/stores/file-store.js";

const fsCjs = createRequire(import.meta.url)("node:fs") as typeof import("node:fs");
const TEXT = 'JBSWY3DPEHPK3PXP\n" TOTP_AUTH\n12345678\n';

let dir = "";
let listed: string[] = [];
const originals = { readdirSync: fsCjs.readdirSync, opendirSync: fsCjs.opendirSync, readdir: fsCjs.readdir, opendir: fsCjs.opendir };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "otpgate-rt1-f3-"));
  listed = [];
  const spy =
    (name: string) =>
    (...args: unknown[]): never => {
      listed.push(`${name}(${String(args[0])})`);
      throw new Error(`${name} called: a resident process must never list a directory`);
    };
  Object.assign(fsCjs, { readdirSync: spy("readdirSync"), opendirSync: spy("opendirSync"), readdir: spy("readdir"), opendir: spy("opendir") });
  syncBuiltinESMExports();
});

afterEach(() => {
  Object.assign(fsCjs, originals);
  syncBuiltinESMExports();
  rmSync(dir, { recursive: true, force: true });
});

test("F3: enrollment writes the new state file without listing the directory", () => {
  for (let i = 0; i < 50; i++) writeFileSync(join(dir, `f${i}`), "");
  const path = join(dir, ".google_authenticator");
  writeNewStateFile(path, TEXT, { replace: false });
  assert.deepEqual(listed, [], "no directory listing");
  assert.equal(readFileSync(path, "latin1"), TEXT);
  assert.equal(existsSync(newStateTempPath(path)), false, "no temp file left");
  writeNewStateFile(path, TEXT.replace("12345678", "87654321"), { replace: true });
  assert.deepEqual(listed, []);
  assert.match(readFileSync(path, "latin1"), /87654321/);
});

test("F3: a killed writer's old leftover (fixed name) is removed by name; a fresh one means another enrollment is running", () => {
  const path = join(dir, ".google_authenticator");
  const tmp = newStateTempPath(path);
  writeFileSync(tmp, "half written");
  assert.throws(
    () => writeNewStateFile(path, TEXT, { replace: false }),
    (err: unknown) => err instanceof StateFileError && /another enrollment .* is writing/.test(err.message),
  );
  assert.equal(existsSync(path), false, "nothing written");
  assert.equal(readFileSync(tmp, "latin1"), "half written", "the other writer's temp file is left alone");
  const old = Date.now() / 1000 - 3600;
  utimesSync(tmp, old, old);
  writeNewStateFile(path, TEXT, { replace: false });
  assert.equal(readFileSync(path, "latin1"), TEXT);
  assert.equal(existsSync(tmp), false);
  assert.deepEqual(listed, []);
});
