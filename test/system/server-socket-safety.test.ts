// otpgate server's API socket path and connections under attack (red team 2, F5 F3 F4):
// a --socket below a directory another user can write, a sticky or shared directory, or a symlink
// in the path is refused before root changes any owner or mode; idle connections cannot take the
// file descriptors RADIUS needs; half-sent bodies do not keep the API busy.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ACCESS_ACCEPT } from "../../src/adapters/radius/packet.js";
import { ask, randomPort, sleep } from "../helpers/radius.js";
import { startServer, throwawayGroup } from "../helpers/server.js";
import { CLI, enrolledUser, oathTotp, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

function startRefused(socket: string, group: string, stateDir: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, "server", "--no-radius", "--socket", socket, "--socket-group", group, "--state-dir", stateDir], { encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe("otpgate server: the socket path and its connections", () => {
  test(
    "F5: a --socket below a directory another user owns or may write, in a shared or sticky directory, or through a symlink is refused; nothing is chowned or chmodded",
    { timeout: 60_000 },
    (t) => {
      if (!systemReady(t, [])) return;
      const user = throwawayUser(t);
      const group = throwawayGroup(t);
      const base = tempDir(t, "otpgate-sockpath-");
      chmodSync(base, 0o755);
      const state = join(base, "state");
      // 1. the parent belongs to the user (the red team's race: she swaps s/ for a symlink after the check).
      const userDir = join(base, "alice");
      mkdirSync(userDir, { mode: 0o755 });
      chownSync(userDir, user.uid, user.gid);
      // 2. the parent is root's but group-writable.
      const groupDir = join(base, "shared");
      mkdirSync(groupDir);
      chmodSync(groupDir, 0o775);
      chownSync(groupDir, 0, user.gid);
      // 3. the socket's directory itself is sticky and world-writable (like /tmp).
      const sticky = join(base, "sticky");
      mkdirSync(sticky);
      chmodSync(sticky, 0o1777);
      // 4. a symlink on the way (root's, to a root directory: refused all the same, with the real path named).
      const real = join(base, "real");
      mkdirSync(real, { mode: 0o755 });
      symlinkSync(real, join(base, "link"));
      // 5. the socket's directory is shared with other files (e.g. --socket /run/server.sock would chmod /run).
      const shared = join(base, "busy");
      mkdirSync(shared, { mode: 0o755 });
      writeFileSync(join(shared, "other.pid"), "1\n");
      const cases: [string, RegExp][] = [
        [join(userDir, "s", "server.sock"), new RegExp(`${userDir} belongs to uid ${user.uid}.*choose a --socket`)],
        [join(groupDir, "s", "server.sock"), new RegExp(`${groupDir} may be written by its group or others`)],
        [join(sticky, "server.sock"), new RegExp(`${sticky} may be written by its group or others`)],
        [join(base, "link", "s", "server.sock"), new RegExp(`${join(base, "link")} is a symlink.*${join(real, "s", "server.sock")}`)],
        [join(shared, "server.sock"), new RegExp(`${shared} holds other files.*a directory of its own`)],
      ];
      for (const [socket, message] of cases) {
        const before = [userDir, groupDir, sticky, real, shared].map((d) => {
          const s = lstatSync(d);
          return `${s.uid}:${s.gid}:${(s.mode & 0o7777).toString(8)}`;
        });
        const r = startRefused(socket, group.name, state);
        assert.equal(r.status, 2, `${socket}: ${r.stderr}`);
        assert.match(r.stderr, message, socket);
        const after = [userDir, groupDir, sticky, real, shared].map((d) => {
          const s = lstatSync(d);
          return `${s.uid}:${s.gid}:${(s.mode & 0o7777).toString(8)}`;
        });
        assert.deepEqual(after, before, `${socket}: no owner or mode changed`);
        assert.ok(!existsSync(join(userDir, "s")) && !existsSync(join(groupDir, "s")) && !existsSync(join(real, "s")), "no directory made");
      }
    },
  );

  test("F3: many idle API connections do not take the descriptors RADIUS needs (capped, and closed when idle)", { timeout: 90_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"]) || !existsSync("/usr/bin/prlimit")) return;
    const { user, secret } = enrolledUser(t);
    const secretDir = tempDir(t, "otpgate-fdsecret-");
    writeFileSync(join(secretDir, "radius.secret"), "fd-test-radius-secret-123456\n", { mode: 0o600 });
    const port = randomPort();
    const server = await startServer(t, ["--listen", `127.0.0.1:${port}`, "--secret-file", join(secretDir, "radius.secret")], { radius: true, wrap: ["prlimit", "--nofile=1024:1024", "--"] });
    const sockets: Socket[] = [];
    t.after(() => sockets.forEach((s) => s.destroy()));
    let closed = 0;
    for (let i = 0; i < 1100; i++) {
      const s = connect({ path: server.socket });
      s.on("error", () => {});
      s.on("close", () => closed++);
      s.resume();
      sockets.push(s);
      if (i % 100 === 99) await sleep(50);
    }
    await sleep(500);
    const answer = await ask(port, Buffer.from("fd-test-radius-secret-123456"), user.name, oathTotp(secret));
    assert.equal(answer.code, ACCESS_ACCEPT, `RADIUS must still answer while the API is flooded: ${server.stdout().slice(-400)}`);
    assert.ok(!server.stdout().includes("EMFILE"), "no EMFILE in the log");
    assert.ok(closed >= 1100 - 512, `connections over the cap are closed at once (${closed} closed)`);
    await sleep(11_000);
    assert.equal(closed, 1100, "idle connections are closed after the idle timeout");
  });

  test("F4: half-sent request bodies neither keep the API busy nor stay open past the body deadline", { timeout: 90_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const server = await startServer(t);
    const sockets: Socket[] = [];
    t.after(() => sockets.forEach((s) => s.destroy()));
    const closed: boolean[] = [];
    for (let i = 0; i < 300; i++) {
      const s = connect({ path: server.socket });
      const n = closed.push(false) - 1;
      s.on("error", () => {});
      s.on("close", () => (closed[n] = true));
      s.write("POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
      sockets.push(s);
    }
    await sleep(1000);
    assert.equal((await server.client.health()).ok, true, "health answers while bodies trickle");
    assert.equal((await server.client.decide({ user: "nosuchuser-otpgt", code: "123456", service: "gateway" })).outcome, "rejected", "a decision is not refused as busy");
    await sleep(7000);
    assert.equal(closed.filter((c) => c).length, 300, "every half-sent request was closed by the server after its body deadline");
  });
});
