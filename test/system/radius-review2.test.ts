// otpgate radius against review 2's attacks: a user-sized directory scan on the event loop (F1).
// Failed on the code before the fix (see the commit message).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ACCESS_REJECT } from "../../src/adapters/radius/packet.js";
import { ask, median, sleep, startRadius } from "../helpers/radius.js";
import { runCli, systemReady, throwawayUser } from "../helpers/system.js";

describe("otpgate radius: work a user controls never runs on the event loop", () => {
  test("an enrolled user with 200,000 files in their home, failing logins in a loop, does not slow another user's answer", { timeout: 180_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const attacker = throwawayUser(t);
    const victim = throwawayUser(t);
    // Counter-based: every wrong code advances the counter, so every attempt is a commit.
    assert.equal(runCli(["enroll", "--user", attacker.name, "-q", "-c", "-W", "-u"]).status, 0);
    assert.equal(runCli(["enroll", "--user", victim.name, "-q", "-t", "-d", "-W", "-u"]).status, 0);
    const made = spawnSync(
      "python3",
      [
        "-c",
        `
import os, sys
os.chdir(sys.argv[1]); p = "f" * 200
for i in range(200000): os.close(os.open(p + str(i), os.O_CREAT | os.O_WRONLY, 0o600))
`,
        attacker.home,
      ],
      { stdio: "inherit" },
    );
    assert.equal(made.status, 0);
    const server = await startRadius(t);
    const baseline: number[] = [];
    for (let i = 0; i < 5; i++) baseline.push((await ask(server.port, server.secret, victim.name, "000000")).ms);
    let stop = false;
    let attempts = 0;
    const attack = async () => {
      while (!stop) {
        await ask(server.port, server.secret, attacker.name, "123456", 5000);
        attempts++;
      }
    };
    const attackers = Array.from({ length: 4 }, attack);
    await sleep(500);
    const during: number[] = [];
    const codes: (number | null)[] = [];
    for (let i = 0; i < 15; i++) {
      const a = await ask(server.port, server.secret, victim.name, "000000", 3000);
      during.push(a.ms);
      codes.push(a.code);
      await sleep(100);
    }
    stop = true;
    await Promise.all(attackers);
    await server.stop();
    t.diagnostic(`attacker attempts: ${attempts}; victim baseline median ${median(baseline).toFixed(0)} ms; during: median ${median(during).toFixed(0)} ms, max ${Math.max(...during).toFixed(0)} ms`);
    assert.ok(attempts > 20, `the attacker really logged in repeatedly (${attempts})`);
    assert.deepEqual(codes, Array(15).fill(ACCESS_REJECT), "every request of the victim was answered");
    assert.ok(Math.max(...during) < 400, `the victim was answered within 400 ms every time (max ${Math.max(...during).toFixed(0)} ms)`);
    assert.ok(join(attacker.home).length > 0);
  });
});
