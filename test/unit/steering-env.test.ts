// Steering variables (review 2): the argon2 binding loads the shared object named by
// NAPI_RS_NATIVE_LIBRARY_PATH (and a WASI build with NAPI_RS_FORCE_WASI); the web gateway runs as
// root too, so it refuses a steering environment like pam, rstudio-helper and radius.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { ROOT_LOGIN_COMMANDS, steeringVariables } from "../../src/core/steering-env.js";
import { CLI } from "../helpers/system.js";

test("NAPI_RS_NATIVE_LIBRARY_PATH, NAPI_RS_FORCE_WASI and any *_NATIVE_LIBRARY_PATH steer node", () => {
  assert.deepEqual(steeringVariables(["PATH", "NAPI_RS_NATIVE_LIBRARY_PATH", "NAPI_RS_FORCE_WASI", "FOO_NATIVE_LIBRARY_PATH", "LANG"]), [
    "FOO_NATIVE_LIBRARY_PATH",
    "NAPI_RS_FORCE_WASI",
    "NAPI_RS_NATIVE_LIBRARY_PATH",
  ]);
});

test("the gateway is among the commands that refuse a steering environment as root", () => {
  assert.ok(ROOT_LOGIN_COMMANDS.includes("gateway"));
});

test("otpgate gateway as root with NAPI_RS_NATIVE_LIBRARY_PATH set: refused (exit 2) before anything is loaded", { skip: process.geteuid?.() !== 0 && "needs root" }, () => {
  const r = spawnSync(process.execPath, [CLI, "gateway", "--help"], { env: { PATH: "/usr/bin:/bin", NAPI_RS_NATIVE_LIBRARY_PATH: "/nonexistent/evil.node" }, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /steering-environment/);
  assert.match(r.stderr, /NAPI_RS_NATIVE_LIBRARY_PATH/);
});
