// otpgate radius against an independent RADIUS client: radclient from Debian's freeradius-utils.
// Accept, reject, Message-Authenticator in both directions (radclient checks the one in the answer),
// and replays of a request radclient really sent: re-sent by the same socket it gets the same
// answer; sent from another port it is dropped and decides nothing.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { ACCESS_ACCEPT } from "../../src/adapters/radius/packet.js";
import { startRadius, type RadiusServer } from "../helpers/radius.js";
import { enrolledUser, oathTotp, systemReady, tempDir } from "../helpers/system.js";

const RADCLIENT = "/usr/bin/radclient";

function ready(t: TestContext): boolean {
  if (!systemReady(t, ["oathtool"])) return false;
  if (existsSync(RADCLIENT)) return true;
  if (process.env.REQUIRE_SYSTEM_TESTS === "1") throw new Error("system test cannot run: missing freeradius-utils (run scripts/install-test-deps.sh)");
  t.skip("missing freeradius-utils (radclient): run scripts/install-test-deps.sh");
  return false;
}

/** The state file's emergency codes (8-digit lines). */
const emergencyCodes = (home: string) =>
  readFileSync(join(home, ".google_authenticator"), "latin1")
    .split("\n")
    .filter((l) => /^\d{8}$/.test(l));

interface RadclientResult {
  readonly reply: "Access-Accept" | "Access-Reject" | null;
  readonly output: string;
}

/** Run radclient (async: the proxy below answers it from this process) with the secret in a file. */
function radclient(t: TestContext, port: number, secret: Buffer, attributes: string[]): Promise<RadclientResult> {
  const dir = tempDir(t, "otpgate-radclient-");
  const secretFile = join(dir, "secret");
  writeFileSync(secretFile, secret.toString(), { mode: 0o600 });
  const child = spawn(RADCLIENT, ["-x", "-r", "1", "-t", "2", "-S", secretFile, `127.0.0.1:${port}`, "auth"], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  child.stdin.end(attributes.join(", ") + "\n");
  return new Promise((resolve) =>
    child.on("exit", () => {
      const m = /Received (Access-Accept|Access-Reject)/.exec(output);
      resolve({ reply: (m?.[1] as RadclientResult["reply"]) ?? null, output });
    }),
  );
}

const udp = async (t: TestContext): Promise<Socket> => {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  t.after(() => s.close());
  return s;
};

/** Send a packet from a socket and wait for one datagram back (null after the timeout). */
function exchange(socket: Socket, packet: Buffer, port: number, timeoutMs = 1500): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off("message", onMessage);
      resolve(null);
    }, timeoutMs);
    const onMessage = (msg: Buffer) => {
      clearTimeout(timer);
      socket.off("message", onMessage);
      resolve(msg);
    };
    socket.on("message", onMessage);
    socket.send(packet, port, "127.0.0.1");
  });
}

/** Decisions the server logged (one JSON line each, with a result). */
const decisions = (server: RadiusServer) =>
  server.stdout().filter((l) => {
    try {
      return "result" in (JSON.parse(l) as object);
    } catch {
      return false;
    }
  }).length;

test("radclient: the right code is accepted, a wrong one rejected; with a Message-Authenticator the answer carries one that radclient verifies", { timeout: 60_000 }, async (t) => {
  if (!ready(t)) return;
  const { user, secret } = enrolledUser(t);
  const server = await startRadius(t);
  const [emergency] = emergencyCodes(user.home);
  assert.ok(emergency, "the enrolled file has emergency codes");

  const ok = await radclient(t, server.port, server.secret, [`User-Name = "${user.name}"`, `User-Password = "${oathTotp(secret)}"`]);
  assert.equal(ok.reply, "Access-Accept", ok.output);
  assert.match(
    ok.output,
    /Received Access-Accept[^\n]*\n(?:\s+[^\n]*\n)*?\s+Message-Authenticator = 0x[0-9a-f]{32}/,
    "every answer is signed, also to a client that sent no Message-Authenticator (issue 10)",
  );

  const wrong = await radclient(t, server.port, server.secret, [`User-Name = "${user.name}"`, `User-Password = "000000"`]);
  assert.equal(wrong.reply, "Access-Reject", wrong.output);

  // radclient computes the Message-Authenticator when the attribute is listed; it drops an answer
  // whose own Message-Authenticator is missing or wrong ("failed verification", no "Received").
  const withMa = await radclient(t, server.port, server.secret, [`User-Name = "${user.name}"`, `User-Password = "${emergency}"`, "Message-Authenticator = 0x00"]);
  assert.equal(withMa.reply, "Access-Accept", withMa.output);
  assert.match(withMa.output, /Received Access-Accept[^\n]*\n(?:\s+[^\n]*\n)*?\s+Message-Authenticator = 0x[0-9a-f]{32}/, "the accept carries a Message-Authenticator");
  assert.ok(!emergencyCodes(user.home).includes(emergency!), "the emergency code is used up");

  const otherSecret = await radclient(t, server.port, Buffer.from("not-the-shared-secret"), [`User-Name = "${user.name}"`, `User-Password = "${emergencyCodes(user.home)[0]}"`]);
  assert.equal(otherSecret.reply, null, `a client with another secret gets no answer: ${otherSecret.output}`);
  assert.equal(emergencyCodes(user.home).length, 4, "and uses up nothing");
});

test("radclient's request replayed: the same socket gets the same answer, another port gets nothing, and the code is used once", { timeout: 60_000 }, async (t) => {
  if (!ready(t)) return;
  const { user } = enrolledUser(t);
  const server = await startRadius(t);
  const codes = emergencyCodes(user.home);
  const code = codes[1]!;

  // A relay between radclient and the server captures the request radclient really sent.
  const front = await udp(t);
  const relay = await udp(t);
  let captured: Buffer | null = null;
  let firstAnswer: Buffer | null = null;
  front.on("message", async (msg, from) => {
    if (captured) return; // radclient's retry, if any, is not relayed
    captured = Buffer.from(msg);
    firstAnswer = await exchange(relay, msg, server.port, 4000);
    if (firstAnswer) front.send(firstAnswer, from.port, from.address);
  });
  const viaRelay = await radclient(t, front.address().port, server.secret, [`User-Name = "${user.name}"`, `User-Password = "${code}"`]);
  assert.equal(viaRelay.reply, "Access-Accept", viaRelay.output);
  assert.ok(captured && firstAnswer);
  const request: Buffer = captured;
  const answer: Buffer = firstAnswer;
  assert.equal(answer[0], ACCESS_ACCEPT);
  const after = readFileSync(join(user.home, ".google_authenticator"), "latin1");
  assert.ok(!emergencyCodes(user.home).includes(code));
  const decided = decisions(server);
  assert.equal(decided, 1, "one decision so far");

  // The same request again from the same socket (a retransmission): the answer already given.
  const again = await exchange(relay, request, server.port);
  assert.ok(again, "a retransmission from the same socket is answered");
  assert.deepEqual(again, answer, "with the same bytes");

  // Captured and sent from another port (what an eavesdropper can do): dropped, nothing decided.
  const attacker = await udp(t);
  assert.equal(await exchange(attacker, request, server.port), null, "a replay from another port gets no answer");
  const attacker2 = await udp(t);
  assert.equal(await exchange(attacker2, request, server.port), null);

  assert.equal(readFileSync(join(user.home, ".google_authenticator"), "latin1"), after, "the state file is unchanged by the replays");
  assert.equal(decisions(server), decided, "no further decision was made");

  // The used code through radclient directly: rejected (it is gone), and another one still works.
  const reuse = await radclient(t, server.port, server.secret, [`User-Name = "${user.name}"`, `User-Password = "${code}"`]);
  assert.equal(reuse.reply, "Access-Reject", reuse.output);
  const next = await radclient(t, server.port, server.secret, [`User-Name = "${user.name}"`, `User-Password = "${codes[2]}"`]);
  assert.equal(next.reply, "Access-Accept", next.output);
  t.diagnostic(`server log: ${server.stdout().join(" | ")}`);
});
