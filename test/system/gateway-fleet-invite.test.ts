// Invitations on the fleet database (issue 11): the gateway's enrollment goes through otpgate
// server (decision_socket), and a server on --store writes the new account into PostgreSQL
// (FleetStore.put): no state file appears in the user's home, the row is in the database with its
// secret encrypted, and the new secret signs in through the gateway (the server deciding on the
// database).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { cookieHeader, cookiesFrom, http, login, startGateway, type RunningGateway } from "../helpers/gateway.js";
import { startCluster } from "../helpers/postgres.js";
import { CLI, oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

/** otpgate server on the fleet database, API only, its socket for `group`. */
async function fleetServer(t: TestContext, dir: string, group: string, store: string, keyFile: string, invitesDir: string): Promise<{ socket: string; logs: () => string }> {
  // The socket's directory is the server's own (it gives it to the group); the state directory apart.
  const socket = join(dir, "fleet", "server.sock");
  mkdirSync(join(dir, "fleet-state"), { recursive: true, mode: 0o700 });
  const args = [
    CLI,
    "server",
    "--no-radius",
    "--socket",
    socket,
    "--socket-group",
    group,
    "--state-dir",
    join(dir, "fleet-state"),
    "--invites-dir",
    invitesDir,
    "--store",
    store,
    "--db-key-file",
    keyFile,
  ];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => void child.kill("SIGKILL"));
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("API listening")) resolve();
    });
    child.once("exit", () => reject(new Error(`otpgate server --store exited: ${err}`)));
  });
  return { socket, logs: () => out + err };
}

async function openInvite(gw: RunningGateway, path: string) {
  const page = await http(gw.base, "GET", path);
  assert.equal(page.status, 200, page.body);
  const secret = /<code>([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replace(/ /g, "");
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(page.body)![1]!;
  return { secret, fields: { csrf: field("csrf"), draft: field("draft") }, cookies: cookiesFrom(page) };
}

describe("invitations enroll into the fleet database", () => {
  test("invite -> enrollment page -> row in the database (no state file) -> the new secret signs in through the server on the database", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const db = await startCluster(t);
    const keys = tempDir(t);
    const migrated = runCli(["db", "migrate", "--store", db.url, "--db-key-file", join(keys, "db.key"), "--create-key-file"]);
    assert.equal(migrated.status, 0, migrated.stderr);
    const dir = tempDir(t);
    const invitesDir = join(dir, "invites");
    const user = throwawayUser(t);
    // The gateway asks the fleet server (its socket is made after the gateway's user exists).
    const gw = await startGateway(dir, { public_url: "https://app.test", allowed_hosts: ["app.test"], invites_dir: invitesDir, decision_socket: join(dir, "fleet", "server.sock") });
    t.after(() => gw.stop());
    const server = await fleetServer(t, dir, gw.gatewayUser!.name, db.url, join(keys, "db.key"), invitesDir);

    const r = runCli(["invite", user.name, "--config", gw.configPath]);
    assert.equal(r.status, 0, r.stderr);
    const path = new URL(r.stdout.trim()).pathname;
    const form = await openInvite(gw, path);
    const done = await http(gw.base, "POST", path, { cookie: cookieHeader(form.cookies) }, new URLSearchParams({ ...form.fields, code: oathTotp(form.secret) }).toString());
    assert.equal(done.status, 200, done.body);
    const codes = [...done.body.matchAll(/<li>([0-9]{8})<\/li>/g)].map((m) => m[1]!);
    assert.equal(codes.length, 5);

    // In the database, not in the home directory; the secret and codes encrypted or digested.
    assert.equal(existsSync(join(user.home, ".google_authenticator")), false, "a state file was written instead of the database row");
    assert.equal(db.psql(`SELECT user_name FROM otpgate_accounts WHERE user_name = '${user.name}'`).trim(), user.name);
    assert.equal(db.psql(`SELECT count(*) FROM otpgate_emergency_codes WHERE user_name = '${user.name}'`).trim(), "5");
    const dump = db.dump();
    assert.doesNotMatch(dump, new RegExp(`${form.secret}|${codes.join("|")}`), "secret or emergency code readable in pg_dump");

    // The new secret signs in through the gateway (the server decides on the database), once per code.
    const code = oathTotp(form.secret, -1);
    const signedIn = await login(gw, user.name, code);
    assert.equal(signedIn.status, 303, signedIn.body);
    // Forward-auth with the new session (behind an https public_url the cookie is __Host-otpgate_session).
    const session = Object.entries(cookiesFrom(signedIn)).find(([name]) => name.endsWith("otpgate_session"))!;
    assert.equal((await http(gw.base, "GET", "/_otpgate/auth", { cookie: `${session[0]}=${session[1]}` })).status, 200);
    const again = await login(gw, user.name, code);
    assert.equal(again.status, 401, "a used code is refused (the database keeps the used step)");
    assert.match(db.psql(`SELECT result || ' ' || service FROM otpgate_audit WHERE user_name = '${user.name}' ORDER BY id`), /accepted gateway/);
    assert.doesNotMatch(server.logs() + gw.logs().join("\n"), new RegExp(`${form.secret}|${codes[0]}`));
  });
});
