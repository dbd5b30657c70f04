// otpgate server's RADIUS side against independent clients: radclient (FreeRADIUS) for accept,
// reject and replay; the `radius` npm package for signed requests from an address configured as
// remote (127.0.0.2 with --local-clients 127.0.0.1); an unsigned request from there is refused
// (BlastRADIUS); a burst of guesses beyond RATE_LIMIT locks only as the state file says.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildAccessRequest } from "../../src/adapters/radius/packet.js";
import { ask, startRadius } from "../helpers/radius.js";
import { oathTotp, runCli, systemReady, throwawayUser } from "../helpers/system.js";

interface RadiusLib {
  encode(args: { code: string; secret: string; identifier: number; attributes: [string, string][]; add_message_authenticator?: boolean }): Buffer;
  verify_response(args: { request: Buffer; response: Buffer; secret: string }): boolean;
}
const radius = createRequire(import.meta.url)("radius") as RadiusLib;

/** Send one packet from `from` (a loopback address) and wait for the answer. */
function sendFrom(from: string, port: number, packet: Buffer, timeoutMs = 1500): Promise<Buffer | null> {
  const socket = createSocket("udp4");
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, timeoutMs);
    socket.on("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.bind(0, from, () => socket.send(packet, port, "127.0.0.1"));
  });
}

function radclient(port: number, secret: Buffer, user: string, code: string): string {
  const r = spawnSync("radclient", ["-r", "1", "-t", "3", "-x", `127.0.0.1:${port}`, "auth", secret.toString()], {
    input: `User-Name = "${user}"\nUser-Password = "${code}"\n`,
    encoding: "utf8",
    timeout: 20_000,
  });
  return `${r.stdout}${r.stderr}`;
}

function enrolled(t: Parameters<typeof throwawayUser>[0], flags: string[]) {
  const user = throwawayUser(t);
  assert.equal(runCli(["enroll", "--user", user.name, ...flags, "-q"]).status, 0);
  return { user, key: readFileSync(join(user.home, ".google_authenticator"), "latin1").split("\n")[0]! };
}

describe("otpgate server RADIUS after BlastRADIUS", () => {
  test("a client configured as remote (127.0.0.2) without Message-Authenticator is refused; signed it is answered; loopback unsigned still works", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, key } = enrolled(t, ["-t", "-d", "-W"]);
    const server = await startRadius(t, ["--local-clients", "127.0.0.1"]);
    const secret = server.secret.toString();
    const unsigned = radius.encode({
      code: "Access-Request",
      secret,
      identifier: 1,
      attributes: [
        ["User-Name", user.name],
        ["User-Password", oathTotp(key)],
      ],
      add_message_authenticator: false,
    });
    assert.equal(await sendFrom("127.0.0.2", server.port, unsigned), null, "no answer to an unsigned request from a remote client");
    const signedReq = radius.encode({
      code: "Access-Request",
      secret,
      identifier: 2,
      attributes: [
        ["User-Name", user.name],
        ["User-Password", oathTotp(key)],
      ],
      add_message_authenticator: true,
    });
    const answer = await sendFrom("127.0.0.2", server.port, signedReq);
    assert.equal(answer?.[0], ACCESS_ACCEPT, "a signed request from the remote client is decided");
    assert.equal(radius.verify_response({ request: signedReq, response: answer!, secret }), true);
    // The same code again from loopback, unsigned (pam_radius_auth 2.0.0): decided, a replay.
    assert.equal((await ask(server.port, server.secret, user.name, oathTotp(key))).code, ACCESS_REJECT);
    await server.stop();
    const lines = server.stdout().join("\n");
    assert.match(lines, /"reason":"no-message-authenticator"/);
    assert.match(lines, /"reason":"replay"/);
  });

  test("--allow-legacy-clients admits the unsigned remote client, with a warning at start and in the log", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, key } = enrolled(t, ["-t", "-d", "-W"]);
    const server = await startRadius(t, ["--local-clients", "127.0.0.1", "--allow-legacy-clients"]);
    assert.match(server.stderr(), /warning: --allow-legacy-clients/);
    const packet = buildAccessRequest(3, randomBytes(16), user.name, oathTotp(key), server.secret);
    assert.equal((await sendFrom("127.0.0.2", server.port, packet))?.[0], ACCESS_ACCEPT);
    await server.stop();
    assert.match(server.stdout().join("\n"), /"legacy":"no-message-authenticator"/);
    assert.match(server.stdout().join("\n"), /"warning":"allow-legacy-clients"/);
  });

  test("radclient (FreeRADIUS): accept, reject, replay", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"]) || !existsSync("/usr/bin/radclient")) {
      if (process.env.REQUIRE_SYSTEM_TESTS === "1") throw new Error("radclient is missing (freeradius-utils)");
      return;
    }
    const { user, key } = enrolled(t, ["-t", "-d", "-W"]);
    const server = await startRadius(t);
    const code = oathTotp(key);
    assert.match(radclient(server.port, server.secret, user.name, code), /Received Access-Accept/);
    assert.match(radclient(server.port, server.secret, user.name, code), /Received Access-Reject/, "replay");
    const wrong = code === "000000" ? "111111" : "000000";
    assert.match(radclient(server.port, server.secret, user.name, wrong), /Received Access-Reject/);
    const out = radclient(server.port, server.secret, user.name, oathTotp(key, 1));
    assert.doesNotMatch(out, /Message-Authenticator.*(invalid|fail)/i);
  });

  test("a burst of guesses beyond RATE_LIMIT 3 per 30 s: the fourth request is refused as rate-limited, even with the right code", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { user, key } = enrolled(t, ["-t", "-d", "-W", "-r", "3", "-R", "30"]);
    const server = await startRadius(t);
    const right = oathTotp(key);
    const wrongs = ["000001", "000002", "000003"].filter((c) => c !== right);
    const answers = await Promise.all(wrongs.slice(0, 3).map((c) => ask(server.port, server.secret, user.name, c)));
    assert.deepEqual(
      answers.map((a) => a.code),
      [ACCESS_REJECT, ACCESS_REJECT, ACCESS_REJECT],
    );
    assert.equal((await ask(server.port, server.secret, user.name, right)).code, ACCESS_REJECT, "locked for the interval");
    await server.stop();
    assert.match(server.stdout().join("\n"), /"reason":"rate-limited"/);
  });
});
