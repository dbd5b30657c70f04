// The launcher runs the bundle with its code cache, and still works when the cache is missing or
// damaged (V8 rejects it and compiles from source).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Script } from "node:vm";
import { test } from "node:test";
import { ROOT, tempDir } from "../helpers/system.js";

const DIST = join(ROOT, "dist");

test("the build's code cache is accepted by this Node", () => {
  const file = join(DIST, "otpgate-core.cjs");
  const source = readFileSync(file, "utf8").replace(/^#!.*/, "");
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData: readFileSync(file + ".cache"),
  });
  assert.equal(script.cachedDataRejected, false);
});

test("without a cache, or with a damaged one, the launcher behaves the same", (t) => {
  const dir = tempDir(t);
  copyFileSync(join(DIST, "otpgate.cjs"), join(dir, "otpgate.cjs"));
  copyFileSync(join(DIST, "otpgate-core.cjs"), join(dir, "otpgate-core.cjs"));
  const run = () => spawnSync(process.execPath, [join(dir, "otpgate.cjs"), "--version"], { encoding: "utf8" });
  const bare = run();
  assert.equal(bare.status, 0);
  assert.match(bare.stdout, /^otpgate \d+\.\d+\.\d+\n$/);
  writeFileSync(join(dir, "otpgate-core.cjs.cache"), Buffer.alloc(5000, 7));
  const damaged = run();
  assert.equal(damaged.status, 0);
  assert.equal(damaged.stdout, bare.stdout);
  assert.equal(damaged.stderr, "");
});
