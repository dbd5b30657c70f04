// The loopback rule from `otpgate radius --help` (review 2, F2), loaded into a throwaway nftables
// table for the test's own port and removed afterwards: an unprivileged user's packets never reach
// the server (even with the right secret), root's do, and doctor's check sees the rule.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { test } from "node:test";
import { ACCESS_REJECT, buildAccessRequest } from "../../src/adapters/radius/packet.js";
import { radiusFirewallRules, radiusHardeningFindings, systemProbe } from "../../src/admin/radius-hardening.js";
import { ask, NOBODY, startRadius } from "../helpers/radius.js";
import { systemReady, uniqueName } from "../helpers/system.js";
import { randomBytes } from "node:crypto";

function sendAs(uid: number, port: number, packet: Buffer): Promise<string> {
  const script = `const s = require("node:dgram").createSocket("udp4");
s.on("error", (e) => { console.log("error:" + e.code); process.exit(0); });
s.on("message", () => { console.log("answered"); process.exit(0); });
s.send(Buffer.from(process.argv[1], "hex"), ${port}, "127.0.0.1");
setTimeout(() => { console.log("none"); process.exit(0); }, 1500);`;
  const child = spawn(process.execPath, ["-e", script, packet.toString("hex")], { uid, gid: uid, cwd: "/", stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((r) => child.on("exit", () => r(out.trim())));
}

test("with the uid-0 loopback rule, an unprivileged user's packets never reach otpgate radius; root's do", { timeout: 60_000 }, async (t) => {
  if (!systemReady(t, ["nft"])) return;
  const server = await startRadius(t);
  const table = uniqueName("otpgate_test").replace(/-/g, "_");
  const load = spawnSync("/usr/sbin/nft", ["-f", "-"], { input: radiusFirewallRules(server.port, table), encoding: "utf8" });
  t.after(() => spawnSync("/usr/sbin/nft", ["delete", "table", "inet", table]));
  assert.equal(load.status, 0, load.stderr);
  try {
    assert.deepEqual(
      radiusHardeningFindings(server.port, { ...systemProbe, unprivilegedPortStart: () => 65536 }).map((f) => f.severity),
      ["ok"],
      "doctor's check sees the rule",
    );
    const request = () => buildAccessRequest(1, randomBytes(16), "nosuchuser", "000000", server.secret);
    const fromNobody = await sendAs(NOBODY, server.port, request());
    assert.notEqual(fromNobody, "answered", "uid nobody's request (right secret even) never reached the server");
    assert.match(fromNobody, /^(none|error:EPERM)$/);
    const fromRoot = await ask(server.port, server.secret, "nosuchuser", "000000");
    assert.equal(fromRoot.code, ACCESS_REJECT, "root (pam_radius_auth in sshd) is answered");
  } finally {
    spawnSync("/usr/sbin/nft", ["delete", "table", "inet", table]);
  }
  assert.notEqual(spawnSync("/usr/sbin/nft", ["list", "table", "inet", table]).status, 0, "the table is gone");
});
