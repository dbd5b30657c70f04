// otpgate server on the fleet store, the network side (issue 11): PostgreSQL over TCP+TLS with
// sslmode=verify-full and a password file (a wrong CA, host name or password stops the server
// with the fix); network RADIUS clients from a clients file (source address -> secret, the most
// specific prefix wins, Message-Authenticator required; every other request dropped with nothing
// changed in the database); setup ssh --backend radius --store (the unit, the refusals that
// change nothing, systemd-analyze verify).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { ACCESS_ACCEPT, ACCESS_REJECT } from "../../src/adapters/radius/packet.js";
import { fleetStore, keyFile } from "../helpers/fleet.js";
import { codeAt } from "../helpers/otp.js";
import { startCluster, type Cluster } from "../helpers/postgres.js";
import { ask, randomPort, sleep } from "../helpers/radius.js";
import { startFleetServer } from "../helpers/server.js";
import { privateSshd } from "../helpers/sshd.js";
import { parseExecStart } from "../helpers/systemd-exec.js";
import { CLI, runCli, systemReady, tempDir, throwawayUser, uniqueName } from "../helpers/system.js";

interface RadiusLib {
  encode(args: { code: string; secret: string; identifier: number; attributes: [string, string][]; add_message_authenticator?: boolean }): Buffer;
  verify_response(args: { request: Buffer; response: Buffer; secret: string }): boolean;
}
const radius = createRequire(import.meta.url)("radius") as RadiusLib;

const newSecret = () => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  return Array.from(randomBytes(16), (b) => alphabet[b % 32]).join("");
};
const step = () => Math.floor(Date.now() / 30_000);

/** One Access-Request from `from` (a loopback address), signed or not; the answer or null. */
function sendFrom(from: string, port: number, secret: string, user: string, code: string, signed: boolean): Promise<{ code: number | null; verified: boolean }> {
  const packet = radius.encode({
    code: "Access-Request",
    secret,
    identifier: Math.floor(Math.random() * 256),
    attributes: [
      ["User-Name", user],
      ["User-Password", code],
    ],
    add_message_authenticator: signed,
  });
  const socket = createSocket("udp4");
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve({ code: null, verified: false });
    }, 1500);
    socket.on("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve({ code: msg[0]!, verified: radius.verify_response({ request: packet, response: msg, secret }) });
    });
    socket.bind(0, from, () => socket.send(packet, port, "127.0.0.1"));
  });
}

/** A cluster with TCP on a random port, TLS, and a password login role. */
async function tlsCluster(t: TestContext): Promise<{ pg: Cluster; role: { name: string; password: string }; port: number }> {
  const role = { name: uniqueName("otpg").replace(/-/g, "_"), password: randomBytes(12).toString("hex") };
  for (let attempt = 0; ; attempt++) {
    const port = 30000 + Math.floor(Math.random() * 30000);
    try {
      return { pg: await startCluster(t, { tcpPort: port, tls: true, role }), role, port };
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

/** A private file of root's (mode 0600) with `text`. */
function privateFile(t: TestContext, name: string, text: string): string {
  const path = join(tempDir(t, "otpgate-fleet-net-"), name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** Run otpgate server that is expected to stop at start: its status and stderr. */
function serverMustStop(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, "server", "--no-socket", "--listen", `127.0.0.1:${randomPort()}`, ...args], { encoding: "utf8", timeout: 40_000 });
  return { status: r.status, stderr: r.stderr };
}

describe("otpgate server --store over TLS (sslmode=verify-full) with a password file", () => {
  test("logins work; a wrong CA, a wrong host name or a wrong password stops the server with the fix", { timeout: 180_000 }, async (t) => {
    if (!systemReady(t, ["openssl"])) return;
    const { pg, role, port } = await tlsCluster(t);
    const keys = keyFile(t);
    const password = privateFile(t, "db.password", role.password + "\n");
    const url = `postgres://${role.name}@localhost:${port}/otpgate?sslmode=verify-full&sslrootcert=${pg.caFile}`;
    const server = await startFleetServer(t, url, keys, ["--db-password-file", password, "--migrate"]);
    assert.doesNotMatch(server.stderr() + server.stdout(), new RegExp(role.password), "the password is in no message");
    const store = await fleetStore(t, pg, keys, { url, passwordFile: password, migrate: false });
    const user = uniqueName("tls");
    const secret = newSecret();
    await store.put(user, `${secret}\n" WINDOW_SIZE 3\n" TOTP_AUTH\n`, "create");
    assert.equal((await ask(server.port, server.secret, user, codeAt(secret, step()), 8000)).code, ACCESS_ACCEPT, "accepted over TLS");
    const ssl = pg.psql(`SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = '${role.name}' AND s.ssl`);
    assert.ok(Number(ssl.trim()) >= 1, "the server's connections are TLS");

    const secretFile = privateFile(t, "radius.secret", randomBytes(18).toString("hex") + "\n");
    const common = ["--secret-file", secretFile, "--db-key-file", keys, "--db-password-file", password];
    // Another CA: the database's certificate is not accepted.
    const otherCa = tempDir(t, "otpgate-other-ca-");
    assert.equal(
      spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=not the CA", "-keyout", "ca.key", "-out", "ca.crt"], { cwd: otherCa }).status,
      0,
    );
    const wrongCa = serverMustStop([...common, "--store", url.replace(pg.caFile!, join(otherCa, "ca.crt"))]);
    assert.notEqual(wrongCa.status, 0, "stopped");
    assert.match(wrongCa.stderr, /TLS certificate was not accepted: sslrootcert= in --store must name the CA file that signed it/, wrongCa.stderr);
    // A host name the certificate does not name (another name of 127.0.0.1 in /etc/hosts).
    const alias = readFileSync("/etc/hosts", "utf8")
      .split("\n")
      .filter((l) => /^127\.0\.0\.1\s/.test(l))
      .flatMap((l) => l.split(/\s+/).slice(1))
      .find((n) => n !== "" && n !== "localhost" && !n.startsWith("#"));
    if (alias !== undefined) {
      const wrongHost = serverMustStop([...common, "--store", url.replace("@localhost:", `@${alias}:`)]);
      assert.notEqual(wrongHost.status, 0, "stopped");
      assert.match(wrongHost.stderr, /does not name the host in --store/, wrongHost.stderr);
    } else t.diagnostic("no other name of 127.0.0.1 in /etc/hosts: the host-name case is not checked");
    const badPassword = privateFile(t, "bad.password", "not-the-password\n");
    const wrongPassword = serverMustStop(["--secret-file", secretFile, "--db-key-file", keys, "--db-password-file", badPassword, "--store", url]);
    assert.notEqual(wrongPassword.status, 0, "stopped");
    assert.match(wrongPassword.stderr, /refused the login: check the user in --store and the password in --db-password-file/, wrongPassword.stderr);
    assert.doesNotMatch(wrongPassword.stderr, /not-the-password/);
  });
});

describe("network RADIUS clients (--clients-file)", () => {
  test("a listed client with its secret and Message-Authenticator is answered; unsigned, wrong secret, unlisted: dropped, nothing changes in the database", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const pg = await startCluster(t);
    const keys = keyFile(t);
    const store = await fleetStore(t, pg, keys);
    const exact = randomBytes(16).toString("hex");
    const wide = randomBytes(16).toString("hex");
    const clients = privateFile(t, "clients", `# network clients\n127.0.0.4/30 ${wide}\n127.0.0.5 ${exact}\n::1 ${randomBytes(16).toString("hex")}\n`);
    // 127.0.0.1 stays the local client (pam_radius_auth, the --secret-file secret); every other
    // loopback address is a network client here.
    const server = await startFleetServer(t, pg.url, keys, ["--clients-file", clients, "--local-clients", "127.0.0.1"]);
    const user = uniqueName("nas");
    const secret = newSecret();
    await store.put(user, `${secret}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" WINDOW_SIZE 3\n" TOTP_AUTH\n`, "create");
    const row = () => pg.psql(`SELECT * FROM otpgate_accounts WHERE user_name = '${user}'`) + pg.psql("SELECT count(*) FROM otpgate_audit");
    await sleep(1000);
    const before = row();
    const code = codeAt(secret, step());
    // Dropped, each with the RIGHT code: unsigned from a listed client, the wide secret from the
    // exact client, the exact secret from another address of the /30, an unlisted source.
    assert.equal((await sendFrom("127.0.0.5", server.port, exact, user, code, false)).code, null, "no Message-Authenticator: dropped");
    assert.equal((await sendFrom("127.0.0.5", server.port, wide, user, code, true)).code, null, "the /30's secret from 127.0.0.5 (its own line is more specific): dropped");
    assert.equal((await sendFrom("127.0.0.6", server.port, exact, user, code, true)).code, null, "127.0.0.5's secret from 127.0.0.6: dropped");
    assert.equal((await sendFrom("127.0.0.9", server.port, wide, user, code, true)).code, null, "an unlisted source: dropped");
    await sleep(1500); // the audit queue would have been flushed by now
    assert.equal(row(), before, "nothing in the database changed for the dropped requests");
    const drops = server.lines().filter((l) => l.event === "drop").map((l) => l.reason);
    assert.ok(drops.includes("unknown-client") && drops.includes("no-message-authenticator") && drops.includes("bad-message-authenticator"), JSON.stringify(drops));
    assert.equal(server.lines().filter((l) => l.event === "login").length, 0, "nothing was decided");

    // The listed client, signed with its own secret: decided, the answer signed with that secret.
    const ok = await sendFrom("127.0.0.5", server.port, exact, user, code, true);
    assert.deepEqual(ok, { code: ACCESS_ACCEPT, verified: true }, "accepted, signed with the client's secret");
    const again = await sendFrom("127.0.0.6", server.port, wide, user, code, true);
    assert.deepEqual(again, { code: ACCESS_REJECT, verified: true }, "the /30 client: decided (a replay), signed with its secret");
    await sleep(300);
    const decided = server.lines().filter((l) => l.event === "login");
    assert.deepEqual(
      decided.map((l) => [l.radiusClient, l.result]),
      [
        ["127.0.0.5", "accepted"],
        ["127.0.0.4/30", "rejected"],
      ],
    );
    // The local client still works with the --secret-file secret (pam_radius_auth, unsigned).
    assert.equal((await ask(server.port, server.secret, user, codeAt(secret, step() + 1), 8000)).code, ACCESS_ACCEPT, "loopback pam_radius_auth");
  });

  test("a non-loopback --listen needs --clients-file (or --allow-remote); --allow-legacy-clients is refused with it; a clients file that is not root's 0600 or is malformed is refused", (t) => {
    if (!systemReady(t, [])) return;
    const secretFile = privateFile(t, "radius.secret", randomBytes(18).toString("hex") + "\n");
    const run = (args: string[]) => runCli(["server", "--no-socket", "--secret-file", secretFile, ...args]);
    const remote = run(["--listen", "0.0.0.0:1"]);
    assert.equal(remote.status, 2, remote.stderr);
    assert.match(remote.stderr, /list the RADIUS clients that may ask in --clients-file FILE/);
    const good = privateFile(t, "clients", `192.0.2.0/24 ${randomBytes(16).toString("hex")}\n`);
    const legacy = run(["--listen", "0.0.0.0:1", "--clients-file", good, "--allow-legacy-clients"]);
    assert.equal(legacy.status, 2);
    assert.match(legacy.stderr, /--allow-legacy-clients does not go with --clients-file/);
    const open = privateFile(t, "clients-open", `192.0.2.0/24 ${randomBytes(16).toString("hex")}\n`);
    spawnSync("chmod", ["644", open]);
    const mode = run(["--listen", "127.0.0.1:1", "--clients-file", open]);
    assert.equal(mode.status, 2);
    assert.match(mode.stderr, /must be a regular file owned by root with mode 0600/);
    const bad = privateFile(t, "clients-bad", `192.0.2.1/24 ${randomBytes(16).toString("hex")}\n`);
    const malformed = run(["--listen", "127.0.0.1:1", "--clients-file", bad]);
    assert.equal(malformed.status, 2);
    assert.match(malformed.stderr, /line 1: "192\.0\.2\.1\/24" has bits set beyond its \/24 prefix/);
  });
});

/** Every file under dir, with its content. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files[p] = readFileSync(p, "latin1");
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

describe("setup ssh --backend radius --store", () => {
  test("refuses (nothing written) when the database is unreachable, not migrated, or the admin not enrolled in it; then writes the unit with the store flags, which systemd-analyze verify accepts", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const pg = await startCluster(t);
    const keys = keyFile(t);
    const store = await fleetStore(t, pg, keys);
    const s = privateSshd(tempDir(t));
    t.after(() => s.cleanup());
    const erin = throwawayUser(t);
    mkdirSync(join(erin.home, ".ssh"), { recursive: true });
    writeFileSync(join(erin.home, ".ssh/authorized_keys"), readFileSync(`${s.clientKey}.pub`));
    const password = privateFile(t, "db.password", "unused-with-trust\n");
    const setup = (url: string, extra: string[] = []) =>
      runCli(["setup", "ssh", "--root", s.root, "--service", s.service, "--sshd", s.sshd, "--node", process.execPath, "--otpgate", CLI, "--admin", erin.name, "--backend", "radius", "--store", url, "--db-key-file", keys, "--db-password-file", password, ...extra]);
    const untouched = snapshot(s.root);

    const unreachable = setup(`postgres://postgres@/otpgate?host=${encodeURIComponent(tempDir(t))}&port=1`);
    assert.equal(unreachable.status, 2, unreachable.stderr);
    assert.match(unreachable.stderr, /cannot reach the fleet database, so nothing was changed/);
    assert.deepEqual(snapshot(s.root), untouched, "nothing written");

    pg.psql("CREATE DATABASE empty", "postgres");
    const unmigrated = setup(pg.url.replace("/otpgate?", "/empty?"));
    assert.equal(unmigrated.status, 2, unmigrated.stderr);
    assert.match(unmigrated.stderr, /run otpgate db migrate/);
    assert.deepEqual(snapshot(s.root), untouched, "nothing written");

    const notEnrolled = setup(pg.url);
    assert.equal(notEnrolled.status, 2, notEnrolled.stderr);
    assert.match(notEnrolled.stderr, new RegExp(`${erin.name} is not enrolled in the fleet database`));
    assert.deepEqual(snapshot(s.root), untouched, "nothing written");

    const nullok = setup(pg.url, ["--nullok"]);
    assert.equal(nullok.status, 2);
    assert.match(nullok.stderr, /--nullok is not available with --store/);

    await store.put(erin.name, `${newSecret()}\n" TOTP_AUTH\n`, "create");
    const r = setup(pg.url);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /while it cannot be reached, every SSH login through this stack is refused \(closed by default\)/);
    const unitPath = join(s.root, "etc/systemd/system/otpgate-server.service");
    const unit = readFileSync(unitPath, "utf8");
    const argv = parseExecStart(/^ExecStart=(.*)$/m.exec(unit)![1]!, { USER: "root" });
    const after = (flag: string) => argv[argv.indexOf(flag) + 1];
    assert.equal(after("--store"), pg.url, "the URL, byte for byte, through systemd's quoting");
    assert.equal(after("--db-key-file"), keys);
    assert.equal(after("--db-password-file"), password, "the password only as a file path");
    assert.doesNotMatch(unit, /unused-with-trust/);
    assert.ok(!argv.includes("--state") && !argv.includes("--nullok"));
    assert.match(unit, /^After=network-online\.target$/m);
    if (existsSync("/usr/bin/systemd-analyze")) {
      const verify = spawnSync("systemd-analyze", ["verify", "--man=no", unitPath], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", SYSTEMD_LOG_LEVEL: "warning" } });
      const complaints = `${verify.stdout}${verify.stderr}`.split("\n").filter((l) => l.includes("otpgate-server.service"));
      assert.deepEqual(complaints, [], `${verify.stdout}${verify.stderr}`);
      assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
    } else if (process.env.REQUIRE_SYSTEM_TESTS === "1") throw new Error("systemd-analyze is missing (scripts/install-test-deps.sh)");
  });
});
