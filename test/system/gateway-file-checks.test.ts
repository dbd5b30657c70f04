// Red team 2 through the CLI (F3, F6, F7, F8): --check-config and the start refuse gateway files
// under a directory another user controls; `gateway sessions --revoke` takes every name a login
// takes; invite --replace says the old secret keeps working until the link is used; --check-config
// warns about loopback trusted proxies.
import assert from "node:assert/strict";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { enrolledUser, runCli, systemReady, tempDir } from "../helpers/system.js";

function rig(t: TestContext, extra: Record<string, string> = {}) {
  const dir = tempDir(t, "fixf-gwfiles-");
  const state = join(dir, "state");
  mkdirSync(state, { mode: 0o700 });
  const config = join(dir, "gw.yaml");
  const keys = join(state, "gateway.keys");
  const sessions = join(state, "gateway.sessions");
  writeFileSync(
    config,
    Object.entries({ public_url: "https://app.test", keys_file: keys, invites_dir: join(state, "invites"), ...extra })
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n") + "\n",
  );
  return { dir, state, config, keys, sessions };
}

describe("gateway files through the CLI", () => {
  test("F3: --check-config and the start refuse a keys_file in a directory another user owns; nothing is created", (t) => {
    if (!systemReady(t, [])) return;
    const { state, config, keys } = rig(t, { listen: "127.0.0.1:53502" });
    chownSync(state, 65534, 65534);
    let r = runCli(["gateway", "--check-config", "--config", config]);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`keys_file: .*${state} is owned by uid 65534, not root.*chown root ${state}`));
    assert.match(r.stderr, /sessions_file: /);
    assert.match(r.stderr, /invites_dir: /);
    r = runCli(["gateway", "--config", config]);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /is owned by uid 65534/);
    assert.equal(existsSync(keys), false, "no keys file was created there");
    // The admin commands write there as root: they refuse too, and write nothing.
    writeFileSync(keys, Buffer.alloc(64, 6), { mode: 0o600 });
    for (const args of [
      ["gateway", "sessions", "--revoke", "alice"],
      ["gateway", "keys", "--rotate"],
      ["invite", "root"],
    ]) {
      r = runCli([...args, "--config", config]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /is owned by uid 65534/, args.join(" "));
    }
    assert.deepEqual(readFileSync(keys), Buffer.alloc(64, 6));
    assert.equal(existsSync(join(state, "gateway.sessions")), false);
    assert.equal(existsSync(join(state, "invites")), false);
    chownSync(state, 0, 0);
    r = runCli(["gateway", "--check-config", "--config", config]);
    assert.equal(r.status, 0, r.stderr);
  });

  test("F7: gateway sessions --revoke takes every name a login takes (9abc, alice@corp, host$); a path-like name is refused", (t) => {
    if (!systemReady(t, [])) return;
    const { config, keys, sessions } = rig(t);
    writeFileSync(keys, Buffer.alloc(64, 4), { mode: 0o600 });
    for (const name of ["9abc", "alice@corp", "host$"]) {
      const r = runCli(["gateway", "sessions", "--revoke", name, "--config", config]);
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /is logged out everywhere/);
    }
    const stored = JSON.parse(readFileSync(sessions, "utf8")) as { validAfter: Record<string, number> };
    assert.deepEqual(Object.keys(stored.validAfter).sort(), ["9abc", "alice@corp", "host$"]);
    const list = runCli(["gateway", "sessions", "--list", "--config", config]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^9abc\tlogged out everywhere/m);
    const before = readFileSync(sessions, "utf8");
    const bad = runCli(["gateway", "sessions", "--revoke", "../x", "--config", config]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /the user name "\.\.\/x" cannot be used: it contains "\/"/);
    assert.equal(readFileSync(sessions, "utf8"), before);
  });

  test("F6: invite --replace says the old secret keeps working until the link is used, in --help and in its output", (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const help = runCli(["invite", "--help"]);
    assert.match(help.stdout.replace(/\s+/g, " "), /the old secret and emergency codes keep working until USER opens the link and confirms/i);
    const { config, keys } = rig(t);
    const { user } = enrolledUser(t);
    writeFileSync(keys, Buffer.alloc(64, 5), { mode: 0o600 });
    const r = runCli(["invite", user.name, "--replace", "--config", config]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr.replace(/\s+/g, " "), new RegExp(`${user.name}'s old secret and emergency codes still work until the link is used`));
  });

  test("F8: --check-config warns (still valid) when a trusted proxy is loopback and the gateway listens on loopback", (t) => {
    if (!systemReady(t, [])) return;
    const { config } = rig(t, { listen: "127.0.0.1:53501", trusted_proxies: "[127.0.0.1]" });
    const r = runCli(["gateway", "--check-config", "--config", config]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: trusted_proxies: 127\.0\.0\.1 is a loopback address/);
  });
});
