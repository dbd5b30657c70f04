// otpgate server reads the invitations (invites_dir) as root, and an invitation with replace:true
// lets whoever holds its link enroll a new secret for its user. So the directory and every
// directory above it must be root's alone: whoever owns or can write one of them (e.g. a gateway
// user owning the state directory) can put another directory of invitations in its place. The
// server refuses such a layout at start and on every invitation request, with a message.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { createInvite, inviteId } from "../../src/stores/invite-store.js";
import { startServer } from "../helpers/server.js";
import { CLI, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/** Run `script` (sh) as `user`: the attacker's moves. */
function asAttacker(user: { uid: number; gid: number }, script: string): void {
  const r = spawnSync("/bin/sh", ["-c", script], { uid: user.uid, gid: user.gid, encoding: "utf8" });
  assert.equal(r.status, 0, `attacker script failed: ${r.stderr}`);
}

describe("otpgate server: invites_dir must be root's alone, up to /", () => {
  test("a user owning a parent of invites_dir cannot plant an invitation (replace:true) for another user", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const victim = throwawayUser(t);
    const attacker = throwawayUser(t);
    const victimState = join(victim.home, ".google_authenticator");
    writeFileSync(victimState, `${SECRET}\n" TOTP_AUTH\n`, { mode: 0o600 });
    chownSync(victimState, victim.uid, victim.gid);
    const before = readFileSync(victimState);
    const server = await startServer(t);
    // A root-owned directory of invitations the attacker knows a link of (another instance's, a
    // backup, one the attacker's own gateway handled): an invitation for the victim, replace:true.
    const elsewhere = tempDir(t, "otpgate-other-invites-");
    const { token } = createInvite(elsewhere, victim.name, { nowMs: Date.now(), ttlMs: 3_600_000, replace: true });
    // The layout goes wrong after the start: the state directory now belongs to the gateway's user.
    chownSync(server.stateDir, attacker.uid, attacker.gid);
    // The attacker swaps invites_dir for a link to that directory (it owns the parent, so it may).
    asAttacker(attacker, `cd ${server.stateDir} && mv invites invites.old && ln -s ${elsewhere} invites`);

    let found: unknown;
    try {
      found = await server.client.invite({ token });
    } catch (err) {
      found = { refused: (err as Error).message };
    }
    assert.deepEqual(Object.keys(found as object), ["refused"], `the planted invitation is not offered: ${JSON.stringify(found)}`);
    assert.match((found as { refused: string }).refused, /invites_dir .*owned by uid \d+, not root.*chown root/);
    let enrolled: unknown;
    try {
      enrolled = await server.client.enroll({ token, secret: "KRSXG5CTMVRXEZLU", scratchCodes: [12345678] });
    } catch (err) {
      enrolled = { refused: (err as Error).message };
    }
    assert.deepEqual(Object.keys(enrolled as object), ["refused"], `no enrollment through it: ${JSON.stringify(enrolled)}`);
    assert.deepEqual(readFileSync(victimState), before, "the victim's state file is unchanged");
    assert.ok(existsSync(join(elsewhere, inviteId(token))), "the invitation was not claimed");
    await server.stop();
    assert.match(server.stdout(), /invites_dir/, "the log says why");
  });

  test("the server refuses to start when invites_dir or a parent is owned by another user or group-writable", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const attacker = throwawayUser(t);
    for (const [label, arrange, reason] of [
      ["a parent owned by a user", (p: string) => chownSync(p, attacker.uid, attacker.gid), /owned by uid \d+, not root/],
      ["a group-writable parent", (p: string) => chmodSync(p, 0o770), /group-writable/],
      ["invites_dir owned by a user", (p: string) => chownSync(join(p, "invites"), attacker.uid, attacker.gid), /owned by uid \d+, not root/],
    ] as const) {
      const base = tempDir(t, "otpgate-invites-start-");
      const parent = join(base, "state");
      mkdirSync(join(parent, "invites"), { recursive: true, mode: 0o700 });
      chmodSync(parent, 0o700);
      arrange(parent);
      const child = spawn(process.execPath, [CLI, "server", "--no-radius", "--socket", join(base, "s.sock"), "--socket-group", "root", "--state-dir", base, "--invites-dir", join(parent, "invites")], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => (child.kill("SIGKILL"), resolve(null)), 5_000);
        child.once("exit", (c) => (clearTimeout(timer), resolve(c)));
      });
      assert.notEqual(code, 0, `${label}: the server does not run (stderr: ${err})`);
      assert.notEqual(code, null, `${label}: the server refused to start (it was still serving after 5 s; stderr: ${err})`);
      assert.match(err, /invites_dir/, `${label}: names the setting`);
      assert.match(err, reason, `${label}: says what is wrong`);
      assert.match(err, /chown root|chmod go-w/, `${label}: says how to fix it`);
      assert.ok(!existsSync(join(base, "s.sock")), `${label}: no socket was created`);
    }
  });
});
