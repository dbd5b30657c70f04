// The gateway's decision service in-process (localDecisions: a gateway without decision_socket, and
// the in-process tests) answers as otpgate server does: THE login decision (decideLogin, code only),
// accounts with a fingerprint, invitations claimed once with the state file written as its owner.
// And the configuration of the unprivileged layout: user: and decision_socket.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { gatewayFileProblems, parseGatewayConfig } from "../../src/adapters/http/gateway-config.js";
import { localDecisions, localFingerprint } from "../../src/adapters/http/local-decisions.js";
import { LookupUnavailable } from "../../src/adapters/http/lookup-unavailable.js";
import type { UserDirectory } from "../../src/adapters/http/user-directory.js";
import { createInvite } from "../../src/stores/invite-store.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { fakeDirectory } from "../helpers/gateway-app.js";
import { codeAt } from "../helpers/otp.js";
import { tempDir } from "../helpers/system.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const STATE = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;
const T0 = 1_800_000_000_000;
const clock = { nowMs: () => T0 };

test("decide: the one decision, code only; replay refused; an unknown user and a busy directory say so; RATE_LIMIT ignored on request", async () => {
  const store = new MemoryAccountStore(`${SECRET}\n" RATE_LIMIT 1 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n`);
  const busy: UserDirectory = { find: async () => ({ kind: "unavailable", reason: "busy" }), storeOf: () => store };
  const d = localDecisions({ users: fakeDirectory({ alice: store }), stateFiles: "~/.google_authenticator", invitesDir: "/nonexistent", clock });
  const code = codeAt(SECRET, Math.floor(T0 / 30_000));
  assert.deepEqual(await d.decide({ user: "alice", code: "000000" === code ? "000001" : "000000", service: "gateway", rateLimit: "ignore" }), { outcome: "rejected", reason: "wrong" });
  assert.deepEqual(await d.decide({ user: "alice", code, service: "gateway", rateLimit: "ignore" }), { outcome: "accepted", via: "totp" }, "RATE_LIMIT 1 was not spent by the wrong code");
  assert.deepEqual(await d.decide({ user: "alice", code, service: "gateway", rateLimit: "ignore" }), { outcome: "rejected", reason: "replay" });
  assert.deepEqual(await d.decide({ user: "bob", code, service: "gateway" }), { outcome: "rejected", reason: "unknown-user" });
  assert.deepEqual(await d.decide({ user: "../x", code, service: "gateway" }), { outcome: "rejected", reason: "invalid-user-name" });
  const b = localDecisions({ users: busy, stateFiles: "~/.google_authenticator", invitesDir: "/nonexistent", clock });
  assert.deepEqual(await b.decide({ user: "alice", code, service: "gateway" }), { outcome: "error", reason: "lookup-busy" });
  await assert.rejects(b.account({ user: "alice" }), LookupUnavailable, "cannot tell is not 'unknown'");
});

test("account: enrolled with the fingerprint of the secret line (changes with the secret), not enrolled, unknown", async () => {
  const store = new MemoryAccountStore(STATE);
  const d = localDecisions({ users: fakeDirectory({ alice: store, carol: new MemoryAccountStore(null) }), stateFiles: "~/.google_authenticator", invitesDir: "/nonexistent", clock });
  assert.deepEqual(await d.account({ user: "alice" }), { account: "enrolled", fingerprint: localFingerprint("alice", SECRET) });
  assert.notEqual(localFingerprint("alice", SECRET), localFingerprint("alice", "JBSWY3DPEHPK3PXP"));
  assert.deepEqual(await d.account({ user: "carol" }), { account: "not-enrolled" });
  assert.deepEqual(await d.account({ user: "nobody" }), { account: "unknown" });
});

test("invite + enroll in-process: the state file written once, 'exists' leaves the invitation usable for nothing else, 'gone' after use", async (t) => {
  if (process.geteuid?.() !== 0) return void t.skip("writes a state file for root's account: root");
  const dir = tempDir(t, "decisions-");
  const invites = join(dir, "invites");
  mkdirSync(invites, { mode: 0o700 });
  const root = { name: "root", uid: 0, gid: 0, home: "/root", groups: [0] };
  const users: UserDirectory = { find: async (n) => (n === "root" ? { kind: "found", account: root } : { kind: "unknown" }), storeOf: () => new MemoryAccountStore(null) };
  const stateFiles = join(dir, "ga-${USER}");
  const d = localDecisions({ users, stateFiles, invitesDir: invites, clock });
  const { token } = createInvite(invites, "root", { nowMs: T0, ttlMs: 3_600_000, replace: false });
  const shown = await d.invite({ token });
  assert.equal(shown.invite?.user, "root");
  assert.equal(shown.invite?.replace, false);
  assert.deepEqual(await d.invite({ token: "A".repeat(43) }), { invite: null });
  assert.deepEqual(await d.enroll({ token, secret: SECRET, scratchCodes: [12345678] }), { result: "enrolled", user: "root", replaced: false });
  assert.match(readFileSync(join(dir, "ga-root"), "latin1"), new RegExp(`^${SECRET}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n$`));
  assert.deepEqual(await d.enroll({ token, secret: "JBSWY3DPEHPK3PXP", scratchCodes: [] }), { result: "gone" }, "used once");
  const second = createInvite(invites, "root", { nowMs: T0, ttlMs: 3_600_000, replace: false });
  assert.deepEqual(await d.enroll({ token: second.token, secret: "JBSWY3DPEHPK3PXP", scratchCodes: [] }), { result: "exists" });
  assert.match(readFileSync(join(dir, "ga-root"), "latin1"), new RegExp(`^${SECRET}\n`), "not replaced");
});

test("config: user: (name or uid, never root) needs decision_socket; with decision_socket invites_dir is not the gateway's", () => {
  const base = "public_url: https://app.test\nkeys_file: /var/lib/otpgate-gw/gateway.keys\n";
  const c = parseGatewayConfig(`${base}user: otpgate-gw\ndecision_socket: /run/otpgate/server.sock\n`);
  assert.equal(c.runAs, "otpgate-gw");
  assert.equal(c.decisionSocket, "/run/otpgate/server.sock");
  assert.equal(parseGatewayConfig(`${base}user: 999\ndecision_socket: /run/otpgate/server.sock\n`).runAs, "999");
  const plain = parseGatewayConfig(base);
  assert.equal(plain.runAs, null);
  assert.equal(plain.decisionSocket, null);
  for (const [yaml, message] of [
    ["user: root\ndecision_socket: /s\n", /user: must not be root/],
    ["user: 0\ndecision_socket: /s\n", /user: must not be root/],
    ["user: a b\ndecision_socket: /s\n", /user: is not a user name or uid/],
    ["user: otpgate-gw\n", /user: needs decision_socket/],
    ["decision_socket: run/server.sock\n", /decision_socket: must be an absolute path/],
  ] as const) {
    assert.throws(
      () => parseGatewayConfig(base + yaml),
      (e: Error) => message.test(e.message),
      yaml,
    );
  }
  // invites_dir under a directory another user owns: a problem for the in-process gateway, none with decision_socket.
  const files = { keysFile: "/var/lib/otpgate-gw/k", sessionsFile: "/var/lib/otpgate-gw/s", passwordFile: null, invitesDir: "/tmp/not-ours/invites" };
  assert.ok(gatewayFileProblems(files, 0).some((p) => p.path === "invites_dir"));
  assert.ok(!gatewayFileProblems({ ...files, decisionSocket: "/run/otpgate/server.sock" }, 0).some((p) => p.path === "invites_dir"));
});
