// The resident processes use public Node APIs only (platform/node-internals.ts): `otpgate server`
// (and its alias `otpgate radius`) call usePublicApisOnly() at start. Checked on the real bundle
// (dist/otpgate-server.cjs is a bundle of its own, with its own copy of node-internals): a preload
// records every process.binding() call of the server process, and an accepted code makes the store
// take its lock (pipe_wrap on the login path, node:net here).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { ACCESS_ACCEPT } from "../../src/adapters/radius/packet.js";
import { ask, randomPort } from "../helpers/radius.js";
import { CLI, enrolledUser, oathTotp, runCli, systemReady, tempDir } from "../helpers/system.js";

/** Start `otpgate <command>` with a preload that appends each process.binding(name) to `record`. */
async function startRecorded(t: TestContext, command: string, state: string, record: string): Promise<{ port: number; secret: Buffer; stop(): Promise<void> }> {
  const dir = tempDir(t, "otpgate-public-apis-");
  const preload = join(dir, "record-bindings.cjs");
  writeFileSync(
    preload,
    `const fs = require("node:fs"); const original = process.binding;
     process.binding = function (name) { fs.appendFileSync(${JSON.stringify(record)}, name + "\\n"); return original.call(process, name); };
     fs.appendFileSync(${JSON.stringify(record)}, "preloaded\\n");`,
  );
  const secret = Buffer.from(randomBytes(18).toString("base64url"));
  const secretFile = join(dir, "radius.secret");
  writeFileSync(secretFile, secret.toString() + "\n", { mode: 0o600 });
  for (let attempt = 0; ; attempt++) {
    const port = randomPort();
    const child = spawn(process.execPath, ["--require", preload, CLI, command, "--listen", `127.0.0.1:${port}`, "--secret-file", secretFile, "--no-socket", "--state", state], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: "/usr/bin:/bin" },
    });
    let err = "";
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    });
    const ready = await new Promise<boolean>((resolve) => {
      child.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        if (err.includes("listening")) resolve(true);
      });
      child.once("exit", () => resolve(false));
    });
    if (!ready) {
      if (attempt < 3 && /in use/.test(err)) continue;
      throw new Error(`otpgate ${command} did not start: ${err}`);
    }
    return {
      port,
      secret,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        await exited;
      },
    };
  }
}

for (const command of ["server", "radius"]) {
  test(`otpgate ${command} touches no private Node binding, also when it commits an accepted code`, { timeout: 30_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, secret } = enrolledUser(t);
    const record = join(tempDir(t), "bindings");
    const server = await startRecorded(t, command, join(user.home, ".google_authenticator"), record);
    const answer = await ask(server.port, server.secret, user.name, oathTotp(secret));
    assert.equal(answer.code, ACCESS_ACCEPT, "the right code is accepted (the store took its lock and wrote)");
    await server.stop();
    assert.ok(existsSync(record), "the preload ran in the server process");
    const calls = readFileSync(record, "utf8").split("\n").filter(Boolean);
    assert.deepEqual(
      calls.filter((c) => c !== "preloaded"),
      [],
      "no process.binding() call (pipe_wrap/process_wrap) in the resident process",
    );
  });
}

test("the RADIUS secret is read as a private file: root's, 0600, at most 256 bytes, never through a symlink", { timeout: 30_000 }, (t) => {
  const dir = tempDir(t, "otpgate-secret-");
  const good = join(dir, "good.secret");
  writeFileSync(good, "a-long-enough-radius-secret-1234\n", { mode: 0o600 });
  const cases: [string, () => string, RegExp][] = [
    ["larger than 256 bytes", () => (writeFileSync(join(dir, "big"), "x".repeat(300), { mode: 0o600 }), join(dir, "big")), /big is 300 bytes; a RADIUS secret is at most 256 bytes/],
    [
      "group-readable",
      () => (writeFileSync(join(dir, "loose"), "a-long-enough-radius-secret-1234\n", { mode: 0o640 }), join(dir, "loose")),
      /must be a regular file owned by root with mode 0600 \(it is 0640, uid 0\): run chown root:root .* && chmod 600/,
    ],
    ["a symlink", () => (symlinkSync(good, join(dir, "link")), join(dir, "link")), /is a symbolic link; otpgate never follows symlinks here/],
    ["missing", () => join(dir, "none"), /cannot read the RADIUS secret .*none \(ENOENT\); otpgate setup ssh --backend radius creates it/],
    ["short", () => (writeFileSync(join(dir, "short"), "short\n", { mode: 0o600 }), join(dir, "short")), /holds a secret shorter than 16 characters/],
  ];
  for (const [label, make, message] of cases) {
    const r = runCli(["radius", "--listen", `127.0.0.1:${randomPort()}`, "--secret-file", make()]);
    assert.notEqual(r.status, 0, `${label}: refused`);
    assert.match(r.stderr, message, `${label}: says why and what to do`);
    assert.doesNotMatch(r.stderr, /listening/, `${label}: never listens`);
  }
});
