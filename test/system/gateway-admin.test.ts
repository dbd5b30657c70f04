// otpgate gateway keys / otpgate gateway sessions / otpgate invite --replace on a gateway's files:
// what each does to keys_file and sessions_file, and every refusal with its message and nothing
// changed. (The running gateway's reaction is in gateway-sessions.test.ts.)
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { enrolledUser, runCli, systemReady, tempDir } from "../helpers/system.js";

function rig(t: TestContext, extra: Record<string, string> = {}) {
  const dir = tempDir(t);
  const config = join(dir, "gw.yaml");
  const keys = join(dir, "gateway.keys");
  const sessions = join(dir, "gateway.sessions");
  writeFileSync(
    config,
    Object.entries({ public_url: "https://app.test", keys_file: keys, invites_dir: join(dir, "invites"), ...extra })
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n") + "\n",
  );
  return { dir, config, keys, sessions };
}

const cli = (...args: string[]) => runCli(args);

describe("otpgate gateway keys / sessions", () => {
  test("keys: refuses without a keys file (nothing created); rotates a legacy file into key ids; retire waits for the session lifetime", (t) => {
    if (!systemReady(t, [])) return;
    const { config, keys, dir } = rig(t);
    let r = cli("gateway", "keys", "--config", join(dir, "none.yaml"));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^otpgate gateway: cannot read .*none\.yaml \(ENOENT\)\n$/, "a user's error, not an internal one");
    r = cli("gateway", "keys", "--rotate", "--config", config);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /gateway\.keys does not exist: the gateway creates it when it first starts; nothing to rotate/);
    assert.equal(existsSync(keys), false);

    writeFileSync(keys, Buffer.alloc(64, 9), { mode: 0o600 });
    r = cli("gateway", "keys", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^0\tadded .*\tseals$/m);
    assert.deepEqual(readFileSync(keys), Buffer.alloc(64, 9), "listing changes nothing");

    r = cli("gateway", "keys", "--rotate", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /added key 1; it seals new sessions from now on/);
    assert.match(r.stdout, /^0\t.*\topens only\n1\t.*\tseals$/m);
    assert.equal(statSync(keys).mode & 0o777, 0o600);
    assert.match(readFileSync(keys, "latin1"), /^# otpgate gateway keys/);

    const before = readFileSync(keys);
    r = cli("gateway", "keys", "--retire-old", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /younger than the absolute session lifetime.*--force.*nothing was changed/);
    assert.deepEqual(readFileSync(keys), before);

    r = cli("gateway", "keys", "--retire-old", "--force", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /retired key\(s\) 0: sessions sealed with them have ended/);
    assert.match(r.stdout, /^1\t.*\tseals\n$/);

    r = cli("gateway", "keys", "--force", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--force only goes with --retire-old/);

    chmodSync(keys, 0o640);
    const loose = readFileSync(keys);
    r = cli("gateway", "keys", "--rotate", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /has mode 0640; it must be readable by its owner only: chmod 600/);
    assert.deepEqual(readFileSync(keys), loose);
  });

  test("sessions --revoke: sets the user's 'valid after'; --list shows it; refusals change nothing", (t) => {
    if (!systemReady(t, [])) return;
    const { config, keys, sessions } = rig(t);
    let r = cli("gateway", "sessions", "--revoke", "alice", "--config", config);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /has not started yet, so alice has no session; nothing was changed/);
    assert.equal(existsSync(sessions), false);

    assert.equal(cli("gateway", "keys", "--rotate", "--config", config).status, 2, "still no keys file");
    writeFileSync(keys, Buffer.alloc(64, 1), { mode: 0o600 });
    const t0 = Date.now();
    r = cli("gateway", "sessions", "--revoke", "alice", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /alice is logged out everywhere/);
    assert.equal(statSync(sessions).mode & 0o777, 0o600);
    const stored = JSON.parse(readFileSync(sessions, "utf8")) as { validAfter: Record<string, number> };
    assert.ok(stored.validAfter.alice! >= t0 && stored.validAfter.alice! <= Date.now());

    r = cli("gateway", "sessions", "--list", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^alice\tlogged out everywhere at 20/m);
    assert.match(r.stdout, /^0 revoked session\(s\) stored/m);

    r = cli("gateway", "sessions", "--revoke", "../x", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /the user name "\.\.\/x" cannot be used: it contains "\/"/);
    r = cli("gateway", "sessions", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /give --revoke USER or --list/);

    writeFileSync(sessions, "{broken", { mode: 0o600 });
    r = cli("gateway", "sessions", "--revoke", "bob", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /gateway\.sessions is not a sessions file otpgate wrote \(not JSON\); fix or delete it/);
    assert.equal(readFileSync(sessions, "utf8"), "{broken");
  });

  test("invite --replace ends the user's gateway sessions at once; a corrupt sessions file refuses the invitation", (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { config, keys, sessions } = rig(t);
    const { user } = enrolledUser(t);
    writeFileSync(keys, Buffer.alloc(64, 2), { mode: 0o600 });
    writeFileSync(sessions, "{broken", { mode: 0o600 });
    let r = cli("invite", user.name, "--replace", "--config", config);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not a sessions file otpgate wrote/);
    assert.equal(readFileSync(sessions, "utf8"), "{broken");
    assert.match(cli("invite", "--list", "--config", config).stderr, /no invitations yet/, "no invitation written");

    writeFileSync(sessions, JSON.stringify({ v: 1, revoked: {}, validAfter: {} }), { mode: 0o600 });
    const t0 = Date.now();
    r = cli("invite", user.name, "--replace", "--config", config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`${user.name}'s gateway sessions have ended`));
    const stored = JSON.parse(readFileSync(sessions, "utf8")) as { validAfter: Record<string, number> };
    assert.ok(stored.validAfter[user.name]! >= t0);
  });
});
