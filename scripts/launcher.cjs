#!/usr/bin/env node
// otpgate launcher (installed as dist/otpgate.cjs): runs the one-file bundle otpgate-core.cjs with
// V8's code cache from otpgate-core.cjs.cache, made at build time, so the login path skips most
// compilation. Without the cache, or when this Node rejects it, the bundle is compiled as usual.
"use strict";
const { readFileSync } = require("node:fs");
const { Script } = require("node:vm");
const { join } = require("node:path");

const file = join(__dirname, "otpgate-core.cjs");
let cachedData;
try {
  cachedData = readFileSync(file + ".cache");
} catch {
  cachedData = undefined;
}
const source = readFileSync(file, "utf8").replace(/^#!.*/, "");
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: file,
  cachedData,
});
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, file, __dirname);
