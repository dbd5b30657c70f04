import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT, tempDir } from "../helpers/system.js";

const lockModule = join(ROOT, "build/src/platform/lock.js");
const spawnModule = join(ROOT, "build/src/platform/spawn-detached.js");
const internalsModule = join(ROOT, "build/src/platform/node-internals.js");

/**
 * A child that counts process.binding() calls, takes a lock and starts `touch FILE` detached, then
 * prints what it used. `publicOnly`: it calls usePublicApisOnly() first, as the resident processes do.
 */
function probe(env: NodeJS.ProcessEnv, touched: string, publicOnly: boolean): { bindings: string[]; netLoaded: boolean; childProcessLoaded: boolean } {
  const script = `
    const calls = [];
    const original = process.binding;
    process.binding = function (name) { calls.push(name); return original.call(process, name); };
    const { usePublicApisOnly } = await import(${JSON.stringify(internalsModule)});
    if (${publicOnly}) usePublicApisOnly();
    const { acquireLock } = await import(${JSON.stringify(lockModule)});
    const { spawnDetached } = await import(${JSON.stringify(spawnModule)});
    const held = await acquireLock("\\0otpgate-test-internals-" + process.pid);
    await held.release();
    spawnDetached("/usr/bin/touch", [${JSON.stringify(touched)}]);
    const loaded = (id) => process.moduleLoadList.some((m) => m === "NativeModule " + id);
    console.log(JSON.stringify({ bindings: calls, netLoaded: loaded("net"), childProcessLoaded: loaded("child_process") }));
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { PATH: "/usr/bin:/bin", ...env }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { bindings: string[]; netLoaded: boolean; childProcessLoaded: boolean };
}

async function waitFor(path: string): Promise<boolean> {
  for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
  return existsSync(path);
}

test("node internals: used on the login path by default; OTPGATE_NO_NODE_INTERNALS=1 and usePublicApisOnly() really switch to node:net and child_process, and both paths work", async (t) => {
  const dir = tempDir(t);
  const fast = probe({}, join(dir, "fast"), false);
  assert.deepEqual(fast.bindings.sort(), ["pipe_wrap", "process_wrap"], "the login path uses the two private bindings");
  assert.equal(fast.netLoaded, false, "and does not load node:net");
  assert.equal(fast.childProcessLoaded, false, "nor node:child_process");
  assert.ok(await waitFor(join(dir, "fast")), "the detached process ran (process_wrap)");

  for (const [label, env, publicOnly] of [
    ["OTPGATE_NO_NODE_INTERNALS=1", { OTPGATE_NO_NODE_INTERNALS: "1" }, false],
    ["usePublicApisOnly()", {}, true],
    ["--pending-deprecation", { NODE_OPTIONS: "--pending-deprecation" }, false],
  ] as const) {
    const file = join(dir, label.replace(/[^a-z]/gi, ""));
    const slow = probe(env, file, publicOnly);
    assert.deepEqual(slow.bindings, [], `${label}: no private binding is touched`);
    assert.equal(slow.netLoaded, true, `${label}: the lock is bound through node:net`);
    assert.equal(slow.childProcessLoaded, true, `${label}: the helper is started through child_process`);
    assert.ok(await waitFor(file), `${label}: the detached process ran (child_process)`);
  }
});

test("the lock excludes across processes whichever path each side takes (same kernel name)", async () => {
  const name = `\\0otpgate-test-x-${process.pid}-${Date.now()}`;
  for (const [holderEnv, waiterEnv] of [
    [{}, { OTPGATE_NO_NODE_INTERNALS: "1" }],
    [{ OTPGATE_NO_NODE_INTERNALS: "1" }, {}],
  ] as const) {
    const holder = spawn(
      process.execPath,
      ["--input-type=module", "-e", `const { acquireLock } = await import(${JSON.stringify(lockModule)}); await acquireLock("${name}"); console.log("held"); setInterval(() => {}, 1000);`],
      {
        env: { PATH: "/usr/bin:/bin", ...holderEnv },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on("data", (d: Buffer) => d.toString().includes("held") && resolve());
        holder.once("exit", () => reject(new Error("the holder exited")));
      });
      const waiter = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const { acquireLock } = await import(${JSON.stringify(lockModule)}); try { await acquireLock("${name}", { timeoutMs: 200 }); console.log("got it"); } catch (e) { console.log("refused: " + e.message); }`,
        ],
        { env: { PATH: "/usr/bin:/bin", ...waiterEnv }, encoding: "utf8" },
      );
      assert.match(waiter.stdout, /refused: another login for this account has held its lock/, `holder ${JSON.stringify(holderEnv)}, waiter ${JSON.stringify(waiterEnv)}`);
    } finally {
      holder.kill("SIGKILL");
      await new Promise((r) => holder.once("exit", r));
    }
    const after = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { acquireLock } = await import(${JSON.stringify(lockModule)}); const h = await acquireLock("${name}", { timeoutMs: 1000 }); await h.release(); console.log("got it");`,
      ],
      {
        env: { PATH: "/usr/bin:/bin", ...waiterEnv },
        encoding: "utf8",
      },
    );
    assert.match(after.stdout, /got it/, "free again once the holder is gone");
  }
});

test("no module but platform/node-internals reaches for a private binding", () => {
  const r = spawnSync("grep", ["-rlE", String.raw`\.binding\(|pipe_wrap|process_wrap`, join(ROOT, "src")], { encoding: "utf8" });
  const files = r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((f) => f.slice(join(ROOT, "src").length + 1));
  assert.deepEqual(
    files.filter((f) => f !== "platform/node-internals.ts"),
    [],
    "only node-internals.ts; the comments elsewhere name it instead",
  );
});
