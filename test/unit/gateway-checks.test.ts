// Red team 2 (F3, F8, F9, F10): where the gateway's files may live (every directory on the way root's
// or the gateway user's, writable by nobody else), paths compared after resolving them, a warning
// for loopback trusted proxies and for X-Forwarded-For from a peer that is not trusted, and user
// lookups that tell "no such user" from "cannot tell".
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import * as gatewayConfig from "../../src/adapters/http/gateway-config.js";
import { parseGatewayConfig, type ConfigProblem } from "../../src/adapters/http/gateway-config.js";

const gatewayFileProblems = (c: gatewayConfig.GatewayConfig, uid: number) => gatewayConfig.gatewayFileProblems(c, uid);
const gatewayConfigWarnings = (c: gatewayConfig.GatewayConfig) => gatewayConfig.gatewayConfigWarnings(c);
import { createSecretReader } from "../../src/adapters/http/secret-reader.js";
import { localDecisions } from "../../src/adapters/http/local-decisions.js";
import { createUserDirectory } from "../../src/adapters/http/user-directory.js";
import { stateFileStores } from "../../src/adapters/http/gateway-entry.js";
import { UserCache } from "../../src/platform/user-cache.js";
import { appRequest, testApp } from "../helpers/gateway-app.js";

const BASE = "public_url: https://app.example.com\n";
const isRoot = process.geteuid?.() === 0;

function problemsOf(yaml: string): ConfigProblem[] {
  try {
    parseGatewayConfig(yaml, "gw.yaml");
  } catch (err) {
    return [...(err as { problems: ConfigProblem[] }).problems];
  }
  return [];
}

function scratch(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "fixf-chk-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("F9: paths are resolved; the same file spelt differently is still the same file", () => {
  assert.equal(parseGatewayConfig(`${BASE}keys_file: /srv//gw/./x/../gateway.keys\n`).keysFile, "/srv/gw/gateway.keys");
  assert.equal(parseGatewayConfig(`${BASE}keys_file: /srv//gw/gateway.keys\n`).sessionsFile, "/srv/gw/gateway.sessions");
  for (const [key, value] of [
    ["sessions_file", "/srv/gw//gateway.keys"],
    ["sessions_file", "/srv/gw/./gateway.keys"],
    ["sessions_file", "/srv/other/../gw/gateway.keys"],
    ["password_file", "/srv/gw//gateway.keys"],
  ] as const) {
    const p = problemsOf(`${BASE}keys_file: /srv/gw/gateway.keys\n${key}: ${value}\n`);
    assert.equal(p.length, 1, `${key}: ${value} ${JSON.stringify(p)}`);
    assert.equal(p[0]!.path, key);
    assert.match(p[0]!.message, /must be another file than keys_file \(\/srv\/gw\/gateway\.keys\)/);
  }
  const p = problemsOf(`${BASE}keys_file: /srv/gw/gateway.keys\nsessions_file: /srv/gw/s\npassword_file: /srv/gw//s\n`);
  assert.deepEqual(
    p.map((x) => x.path),
    ["password_file"],
  );
  assert.match(p[0]!.message, /another file than sessions_file/);
  const inv = problemsOf(`${BASE}keys_file: /srv/gw/gateway.keys\ninvites_dir: /srv/gw/gateway.keys/\n`);
  assert.deepEqual(
    inv.map((x) => x.path),
    ["invites_dir"],
  );
});

test("F9: two spellings that meet through a symbolic link to a directory are the same file", { skip: !isRoot && "needs root" }, (t) => {
  const dir = scratch(t);
  mkdirSync(join(dir, "real"), { mode: 0o700 });
  symlinkSync(join(dir, "real"), join(dir, "alias"));
  const c = parseGatewayConfig(`${BASE}keys_file: ${dir}/real/gateway.keys\nsessions_file: ${dir}/alias/gateway.keys\ninvites_dir: ${dir}/real/invites\n`);
  const p = gatewayFileProblems(c, 0);
  assert.ok(
    p.some((x) => x.path === "sessions_file" && /is keys_file \(.*real\/gateway\.keys\) through a symbolic link/.test(x.message)),
    JSON.stringify(p),
  );
});

test("F3: keys_file, sessions_file, invites_dir and password_file under a directory another user controls are refused, with what to chown/chmod", { skip: !isRoot && "needs root" }, (t) => {
  const dir = scratch(t);
  const config = (sub: string) => parseGatewayConfig(`${BASE}keys_file: ${dir}/${sub}/gateway.keys\ninvites_dir: ${dir}/${sub}/invites\npassword_file: ${dir}/${sub}/passwords\n`);
  // Good: root's, 0700, inside /tmp (sticky, root's): nothing to say.
  mkdirSync(join(dir, "good"), { mode: 0o700 });
  assert.deepEqual(gatewayFileProblems(config("good"), 0), []);

  // Owned by another user (the red team's /tmp/rt2-shared owned by rt2-bob).
  mkdirSync(join(dir, "bob"), { mode: 0o755 });
  chownSync(join(dir, "bob"), 65534, 65534);
  let p = gatewayFileProblems(config("bob"), 0);
  assert.deepEqual([...new Set(p.map((x) => x.path))].sort(), ["invites_dir", "keys_file", "password_file", "sessions_file"]);
  assert.ok(
    p.every((x) => x.message.includes(`${dir}/bob is owned by uid 65534`) && x.message.includes(`chown root ${dir}/bob`)),
    JSON.stringify(p),
  );

  // Group- or world-writable (not sticky).
  mkdirSync(join(dir, "open"), { mode: 0o700 });
  chmodSync(join(dir, "open"), 0o777);
  p = gatewayFileProblems(config("open"), 0);
  assert.ok(p.length >= 1 && p.every((x) => /world-writable \(mode 0777\).*chmod go-w/.test(x.message)), JSON.stringify(p));
  mkdirSync(join(dir, "grp"), { mode: 0o700 });
  chmodSync(join(dir, "grp"), 0o770);
  assert.ok(gatewayFileProblems(config("grp"), 0).every((x) => /group-writable.*chmod go-w/.test(x.message)));

  // A sticky world-writable directory may be on the way, never the one that holds the files.
  mkdirSync(join(dir, "sticky"), { mode: 0o700 });
  chmodSync(join(dir, "sticky"), 0o1777);
  assert.ok(gatewayFileProblems(config("sticky"), 0).some((x) => x.path === "keys_file" && /sticky.*anyone can create names/.test(x.message)));

  // A symbolic link on the way into a directory another user owns.
  symlinkSync(join(dir, "bob"), join(dir, "link"));
  assert.ok(gatewayFileProblems(config("link"), 0).some((x) => x.message.includes(`${dir}/bob is owned by uid 65534`)));

  // The gateway's own user (not root) may own them.
  mkdirSync(join(dir, "svc"), { mode: 0o700 });
  chownSync(join(dir, "svc"), 65534, 65534);
  assert.deepEqual(gatewayFileProblems(config("svc"), 65534), []);

  // The file itself, when it exists: another user's file.
  writeFileSync(join(dir, "good", "passwords"), "", { mode: 0o600 });
  chownSync(join(dir, "good", "passwords"), 65534, 65534);
  p = gatewayFileProblems(config("good"), 0);
  assert.deepEqual(
    p.map((x) => x.path),
    ["password_file"],
  );
});

test("F8: --check-config warns when a trusted proxy is a loopback address and the listener takes loopback connections", () => {
  const warn = (yaml: string) => gatewayConfigWarnings(parseGatewayConfig(`${BASE}${yaml}`));
  const w = warn("trusted_proxies: [127.0.0.1]\n");
  assert.equal(w.length, 1);
  assert.match(w[0]!, /trusted_proxies: 127\.0\.0\.1 is a loopback address and the gateway listens on 127\.0\.0\.1:9091: any local user can connect from it and choose the address/);
  assert.equal(warn("listen: 0.0.0.0:9091\ntrusted_proxies: [127.0.0.0/8]\n").length, 1, "a wildcard listener takes loopback too");
  assert.equal(warn("listen: '[::1]:9091'\ntrusted_proxies: ['::1']\n").length, 1);
  assert.deepEqual(warn("trusted_proxies: [10.0.0.0/8]\n"), []);
  assert.deepEqual(warn("listen: 10.1.2.3:9091\ntrusted_proxies: [127.0.0.1]\n"), []);
  assert.deepEqual(warn(""), []);
});

test("F8: X-Forwarded-For or Forwarded from a peer that is not trusted is logged as a warning, at most once a minute", async () => {
  const a = testApp();
  const xff = (remoteAddress: string, headers: Record<string, string>) => appRequest(a.app, "/_otpgate/healthz", { headers: { host: "app.test", ...headers }, remoteAddress });
  await xff("127.0.0.80", { "x-forwarded-for": "203.0.113.66" });
  await xff("127.0.0.80", { "x-forwarded-for": "198.51.100.7" });
  await xff("127.0.0.81", { forwarded: "for=198.51.100.7" });
  const warnings = a.logs.filter((l) => l.event === "warning" && l.where === "forwarded");
  assert.equal(warnings.length, 1, JSON.stringify(a.logs));
  assert.match(String(warnings[0]!.message), /X-Forwarded-For from 127\.0\.0\.80, which is not in trusted_proxies: ignored/);
  a.clock.now += 61_000;
  await xff("127.0.0.81", { forwarded: "for=198.51.100.7" });
  assert.equal(a.logs.filter((l) => l.event === "warning" && l.where === "forwarded").length, 2);
  const b = testApp({ trusted_proxies: ["127.0.0.80"] });
  await appRequest(b.app, "/_otpgate/healthz", { headers: { host: "app.test", "x-forwarded-for": "203.0.113.66" }, remoteAddress: "127.0.0.80" });
  assert.deepEqual(
    b.logs.filter((l) => l.event === "warning"),
    [],
    "a trusted proxy: no warning",
  );
});

function fakeGetent(t: { after(fn: () => void): void }, script: string): string {
  const dir = scratch(t);
  const path = join(dir, "getent");
  writeFileSync(path, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return path;
}

test("F10: getent's 'not found' (exit 2) is cached as no such user; errors, timeouts and kills are 'cannot tell', never cached", async (t) => {
  const now = { v: 0 };
  const opts = { passwdPath: "/nonexistent/passwd", groupPath: "/nonexistent/group", nowMs: () => now.v };
  const missing = new UserCache({ ...opts, getent: fakeGetent(t, "exit 2") });
  assert.equal(await missing.lookup("ghost"), null);
  assert.equal(await missing.lookup("ghost"), null);
  assert.equal(missing.spawned, 1, "not found is cached");

  for (const [what, script, extra] of [
    ["an error (exit 1)", "exit 1", {}],
    ["an NSS backend that is down (exit 3)", "echo 'ldap down' >&2; exit 3", {}],
    ["a kill", "kill -9 $$", {}],
    ["a timeout", "sleep 5", { getentTimeoutMs: 200 }],
  ] as const) {
    const cache = new UserCache({ ...opts, getent: fakeGetent(t, script), ...extra });
    assert.equal(await cache.lookup("alice"), "busy", what);
    assert.equal(await cache.lookup("alice"), "busy", what);
    assert.equal(cache.spawned, 2, `${what}: not cached, asked again`);
  }
  const gone = new UserCache({ ...opts, getent: "/nonexistent/getent" });
  assert.equal(await gone.lookup("alice"), "busy", "getent missing: cannot tell");

  const found = new UserCache({ ...opts, getent: fakeGetent(t, 'echo "9abc:x:4242:4242::/home/9abc:/bin/sh"') });
  const account = await found.lookup("9abc");
  assert.ok(account && account !== "busy" && account.uid === 4242);
});

test("F10: the secret reader treats 'cannot tell' as check again later (throws), 'no such user' as gone (null)", async (t) => {
  const opts = { passwdPath: "/nonexistent/passwd", groupPath: "/nonexistent/group", nowMs: () => 0 };
  const reader = (cache: UserCache) =>
    createSecretReader(
      localDecisions({
        users: createUserDirectory({ lookup: (n) => cache.lookup(n), timeoutMs: 1000, storeOf: stateFileStores("~/.google_authenticator") }),
        stateFiles: "~/.google_authenticator",
        invitesDir: "/nonexistent",
        clock: { nowMs: () => 0 },
      }),
    );
  const down = reader(new UserCache({ ...opts, getent: fakeGetent(t, "exit 1") }));
  await assert.rejects(down("alice"), /checking again later/);
  const none = reader(new UserCache({ ...opts, getent: fakeGetent(t, "exit 2") }));
  assert.equal(await none("alice"), null);
});
