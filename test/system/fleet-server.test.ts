// otpgate server on the fleet store (issue 11), against a real PostgreSQL cluster: two servers on
// one database accept a code once and share one RATE_LIMIT; pam_radius_auth with two servers keeps
// working when one dies; the database stopped or frozen refuses every login with one log line per
// outage while the event loop stays free, and logins work again without a restart; TLS with
// sslmode=verify-full and a password file; one audit row per decision, never the code.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { DecisionClient } from "../../src/adapters/server/client.js";
import { ACCESS_ACCEPT, ACCESS_REJECT } from "../../src/adapters/radius/packet.js";
import type { AuditRecord } from "../../src/ports/fleet.js";
import { fleetStore, keyFile } from "../helpers/fleet.js";
import { codeAt, wrongCode } from "../helpers/otp.js";
import { startCluster } from "../helpers/postgres.js";
import { ask, sleep } from "../helpers/radius.js";
import { percentiles, startFleetServer, type FleetServer } from "../helpers/server.js";
import { pamService, pamtester, systemReady, tempDir, uniqueName } from "../helpers/system.js";
import { createInvite } from "../../src/stores/invite-store.js";

const PAM_RADIUS = "/lib/x86_64-linux-gnu/security/pam_radius_auth.so";

const base32 = (bytes: Buffer): string => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const b of bytes) bits += b.toString(2).padStart(8, "0");
  let out = "";
  for (let i = 0; i + 5 <= bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return out;
};
const newSecret = () => base32(randomBytes(10));
const step = () => Math.floor(Date.now() / 30_000);

/** Wait until at least `ms` remain in the current 30 s step, so a code stays the current one. */
async function awayFromStepEnd(ms = 8000): Promise<void> {
  const left = 30_000 - (Date.now() % 30_000);
  if (left < ms) await sleep(left + 200);
}

/** Audit rows of `user`, waiting for the servers' batched writes (at least `n` of them). */
async function auditOf(store: { auditRecords(q: { user?: string }): Promise<AuditRecord[]> }, user: string, n: number): Promise<AuditRecord[]> {
  for (let i = 0; i < 60; i++) {
    const rows = await store.auditRecords({ user });
    if (rows.length >= n) return rows;
    await sleep(250);
  }
  return store.auditRecords({ user });
}

function logins(server: FleetServer, user: string): Record<string, unknown>[] {
  return server.lines().filter((l) => l.event === "login" && l.user === user);
}

describe("otpgate server --store postgres://", () => {
  test("two servers on one database: the same code sent to both at once is accepted once; wrong codes share one RATE_LIMIT; audit rows, never a code", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const pg = await startCluster(t);
    const keys = keyFile(t);
    const store = await fleetStore(t, pg, keys);
    const [a, b] = await Promise.all([startFleetServer(t, pg.url, keys), startFleetServer(t, pg.url, keys)]);

    const codesSent: string[] = [];
    for (let round = 0; round < 3; round++) {
      await awayFromStepEnd();
      const users = Array.from({ length: 4 }, () => ({ name: uniqueName("fl"), secret: newSecret() }));
      for (const u of users) assert.equal(await store.put(u.name, `${u.secret}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`, "create"), "written");
      const answers = await Promise.all(
        users.map(async (u) => {
          const code = codeAt(u.secret, step());
          codesSent.push(code);
          const [x, y] = await Promise.all([ask(a.port, a.secret, u.name, code, 8000), ask(b.port, b.secret, u.name, code, 8000)]);
          return [x.code, y.code];
        }),
      );
      for (const [i, pair] of answers.entries()) {
        assert.equal(pair.filter((c) => c === ACCESS_ACCEPT).length, 1, `round ${round}, user ${i}: exactly one of the two servers accepts (${pair.join(",")})`);
        assert.equal(pair.filter((c) => c === ACCESS_REJECT).length, 1, `round ${round}, user ${i}: the other refuses`);
      }
      for (const u of users) {
        const reasons = [...logins(a, u.name), ...logins(b, u.name)].map((l) => `${String(l.result)}:${String(l.reason ?? l.via)}`).sort();
        assert.deepEqual(reasons, ["accepted:totp", "rejected:replay"], `${u.name}: one accepted, one replay`);
      }
    }

    // RATE_LIMIT 3 30, one shared count: three wrong codes spread over both servers, then the
    // RIGHT code is refused as rate-limited on either.
    await awayFromStepEnd(12_000);
    const limited = { name: uniqueName("rl"), secret: newSecret() };
    await store.put(limited.name, `${limited.secret}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n`, "create");
    const s = step();
    const wrong = wrongCode(limited.secret, s - 3, s + 3);
    codesSent.push(wrong);
    for (const [i, server] of [a, b, a].entries()) assert.equal((await ask(server.port, server.secret, limited.name, wrong, 8000)).code, ACCESS_REJECT, `wrong code ${i + 1}`);
    const right = codeAt(limited.secret, s);
    codesSent.push(right);
    assert.equal((await ask(b.port, b.secret, limited.name, right, 8000)).code, ACCESS_REJECT, "the 4th attempt, on the other server, is over the shared RATE_LIMIT");
    const reasons = [...logins(a, limited.name), ...logins(b, limited.name)].map((l) => String(l.reason)).sort();
    assert.deepEqual(reasons, ["rate-limited", "wrong", "wrong", "wrong"]);

    // One audit row per decision, with host, service, client, result and reason; never a code.
    const rows = await auditOf(store, limited.name, 4);
    assert.equal(rows.length, 4, "one audit row per decision");
    assert.deepEqual(rows.map((r) => r.reason).sort(), ["rate-limited", "wrong", "wrong", "wrong"]);
    for (const r of rows) {
      assert.equal(r.result, "rejected");
      assert.equal(r.service, "radius");
      assert.equal(r.clientAddress, "127.0.0.1");
      assert.ok(r.host.length > 0);
      assert.equal(r.via, null);
    }
    const all = await store.auditRecords({ limit: 10_000 });
    assert.ok(all.filter((r) => r.result === "accepted" && r.via === "totp").length >= 12, "the accepted logins are audited");
    const text = JSON.stringify(all);
    for (const code of codesSent) assert.ok(!text.includes(code), "no code in any audit row");
  });

  test("pamtester + pam_radius_auth with two servers (central layout): kill one, logins still work through the other; a fleet user needs no passwd entry", { timeout: 120_000 }, async (t) => {
    if (!systemReady(t, ["pamtester"])) return;
    if (!existsSync(PAM_RADIUS)) {
      if (process.env.REQUIRE_SYSTEM_TESTS === "1") throw new Error("system test cannot run: missing libpam-radius-auth");
      return t.skip("missing libpam-radius-auth");
    }
    const pg = await startCluster(t);
    const keys = keyFile(t);
    const store = await fleetStore(t, pg, keys);
    const [a, b] = await Promise.all([startFleetServer(t, pg.url, keys), startFleetServer(t, pg.url, keys)]);
    const dir = tempDir(t, "otpgate-pamradius-");
    const conf = join(dir, "pam_radius.conf");
    writeFileSync(conf, `127.0.0.1:${a.port} ${a.secret.toString()} 2\n127.0.0.1:${b.port} ${b.secret.toString()} 2\n`, { mode: 0o600 });
    const service = pamService(t, [`auth required pam_radius_auth.so conf=${conf}`, "account required pam_permit.so"]);
    const user = uniqueName("nopw").slice(0, 14);
    assert.equal(spawnSync("getent", ["passwd", user]).status, 2, "the user is in no passwd database");
    const secret = newSecret();
    await store.put(user, `${secret}\n" DISALLOW_REUSE\n" WINDOW_SIZE 3\n" TOTP_AUTH\n`, "create");

    await awayFromStepEnd(15_000);
    const s = step();
    const first = pamtester(service, user, codeAt(secret, s));
    assert.ok(first.ok, `both servers up: accepted (${first.out})`);
    await sleep(500); // pamtester ran synchronously: let the servers' stdout be read
    assert.equal(logins(a, user).length, 1, "the first server in the file decided");
    a.child.kill("SIGKILL");
    await new Promise((r) => a.child.once("exit", r));
    const second = pamtester(service, user, codeAt(secret, s + 1));
    assert.ok(second.ok, `first server dead: accepted through the second (${second.out})`);
    await sleep(500);
    assert.deepEqual(
      logins(b, user).map((l) => l.result),
      ["accepted"],
    );
    const replay = pamtester(service, user, codeAt(secret, s + 1));
    assert.equal(replay.ok, false, "the code used through the second server is refused again");
  });

  test("database stopped or frozen: every login refused with ONE log line per outage, the service alive, the event loop free; back without a restart", { timeout: 180_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const pg = await startCluster(t);
    const keys = keyFile(t);
    const store = await fleetStore(t, pg, keys);
    const server = await startFleetServer(t, pg.url, keys);
    const health = new DecisionClient({ socketPath: server.socket, timeoutMs: 5000, connections: 1 });
    t.after(() => health.close().catch(() => {}));
    const user = uniqueName("down");
    const secret = newSecret();
    await store.put(user, `${secret}\n" WINDOW_SIZE 3\n" TOTP_AUTH\n`, "create");
    // No DISALLOW_REUSE: the current code may be sent again and again.
    const nextCode = () => codeAt(secret, step());
    assert.equal((await ask(server.port, server.secret, user, nextCode(), 8000)).code, ACCESS_ACCEPT, "up: accepted");

    /** While `during` runs: the API's health round trips (the event loop's responsiveness). */
    const probeWhile = async <T>(during: Promise<T>): Promise<{ result: T; ms: number[] }> => {
      const ms: number[] = [];
      let done = false;
      const probe = (async () => {
        while (!done) {
          const t0 = performance.now();
          await health.health();
          ms.push(performance.now() - t0);
          await sleep(20);
        }
      })();
      const result = await during;
      done = true;
      await probe;
      return { result, ms };
    };

    // 1. Stopped: connections refused at once.
    await pg.stop("fast");
    const down = await probeWhile(Promise.all(Array.from({ length: 20 }, () => ask(server.port, server.secret, user, nextCode(), 15_000))));
    assert.ok(
      down.result.every((r) => r.code === ACCESS_REJECT),
      `database down: every login refused (${down.result.map((r) => r.code).join(",")})`,
    );
    const api = await server.client.decide({ user, code: nextCode(), service: "gateway" });
    assert.deepEqual(api, { outcome: "error", reason: "unavailable" }, "the API says unavailable");
    assert.equal(server.child.exitCode, null, "the server is alive");
    const outage = server.lines().filter((l) => l.event === "fleet-unavailable");
    assert.equal(outage.length, 1, "one log line for the outage, not one per login");
    assert.match(String(outage[0]!.message), /every login is refused/);
    assert.ok(!JSON.stringify(server.lines()).includes(secret), "no secret in any log line");
    const stopped = percentiles(down.ms);
    assert.ok(stopped.max < 500, `the event loop answers while the database is down (health max ${stopped.max.toFixed(1)} ms)`);
    const refused = server.lines().filter((l) => l.event === "login" && l.user === user && l.reason === "unavailable");
    assert.ok(refused.length >= 20, "each refusal is a decision line with reason unavailable");

    // 2. Back: the next login works, no restart; one line says so.
    await pg.start();
    let back = await ask(server.port, server.secret, user, nextCode(), 8000);
    for (let i = 0; i < 10 && back.code !== ACCESS_ACCEPT; i++) {
      await sleep(500);
      back = await ask(server.port, server.secret, user, nextCode(), 8000);
    }
    assert.equal(back.code, ACCESS_ACCEPT, "database back: accepted without restarting otpgate");
    assert.equal(server.lines().filter((l) => l.event === "fleet-back").length, 1, "one line when it is back");

    // 3. Frozen: every PostgreSQL process stopped (SIGSTOP by pid): queries hang until the
    // timeouts; logins are refused, the event loop stays free.
    const postmaster = Number(readFileSync(join(pg.dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
    const children = spawnSync("pgrep", ["-P", String(postmaster)], { encoding: "utf8" })
      .stdout.split("\n")
      .filter(Boolean)
      .map(Number);
    const frozen = [postmaster, ...children];
    const thaw = () => frozen.forEach((pid) => spawnSync("kill", ["-CONT", String(pid)]));
    t.after(thaw);
    for (const pid of frozen) process.kill(pid, "SIGSTOP");
    const hung = await probeWhile(Promise.all(Array.from({ length: 10 }, () => ask(server.port, server.secret, user, nextCode(), 20_000))));
    thaw();
    assert.ok(
      hung.result.every((r) => r.code !== ACCESS_ACCEPT),
      `frozen database: no login accepted (${hung.result.map((r) => r.code).join(",")})`,
    );
    assert.ok(hung.result.every((r) => r.code === ACCESS_REJECT && r.ms < 15_000), `answered with a refusal within the timeouts (${hung.result.map((r) => Math.round(r.ms)).join(",")} ms)`);
    const frozenMs = percentiles(hung.ms);
    assert.ok(frozenMs.n > 10 && frozenMs.max < 500, `the event loop answers while the database hangs (health n=${frozenMs.n} max ${frozenMs.max.toFixed(1)} ms)`);
    assert.equal(server.child.exitCode, null, "the server is alive");
    let thawed = await ask(server.port, server.secret, user, nextCode(), 8000);
    for (let i = 0; i < 20 && thawed.code !== ACCESS_ACCEPT; i++) {
      await sleep(500);
      thawed = await ask(server.port, server.secret, user, nextCode(), 8000);
    }
    assert.equal(thawed.code, ACCESS_ACCEPT, "thawed: accepted again");
    assert.equal(server.lines().filter((l) => l.event === "fleet-unavailable").length, 2, "one line per outage (two outages)");

    // Audit rows for the decisions made while the database answered, with their reasons.
    const rows = await auditOf(store, user, 2);
    assert.ok(rows.some((r) => r.result === "accepted"));
  });

  test("the unix-socket API on the fleet: decide (audited, service and client address), account (fingerprint), an invitation enrolls into the database for a user not in passwd", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const pg = await startCluster(t);
    const keys = keyFile(t);
    const store = await fleetStore(t, pg, keys);
    const server = await startFleetServer(t, pg.url, keys);
    const user = uniqueName("inv").slice(0, 14);
    assert.equal(spawnSync("getent", ["passwd", user]).status, 2, "the user is in no passwd database");
    assert.deepEqual(await server.client.account({ user }), { account: "not-enrolled" });

    const { token } = createInvite(server.invitesDir, user, { nowMs: Date.now(), ttlMs: 3_600_000, replace: false });
    const secret = newSecret();
    const scratch = [12345678, 23456789];
    assert.deepEqual(await server.client.enroll({ token, secret, scratchCodes: scratch }), { result: "enrolled", user, replaced: false });
    assert.deepEqual(await server.client.enroll({ token, secret, scratchCodes: scratch }), { result: "gone" }, "an invitation is used once");
    const doc = await store.document(user);
    assert.ok(doc !== null && doc.text.startsWith(`${secret}\n`), "enrolled in the database");
    assert.equal(doc!.scratchCodesOmitted, 2, "with its emergency codes (as digests)");
    const account = await server.client.account({ user });
    assert.equal(account.account, "enrolled");
    const again = await server.client.account({ user });
    assert.deepEqual(again, account, "a stable fingerprint");

    await awayFromStepEnd();
    const code = codeAt(secret, step());
    assert.deepEqual(await server.client.decide({ user, code, service: "gateway", clientAddress: "192.0.2.44" }), { outcome: "accepted", via: "totp" });
    assert.deepEqual(await server.client.decide({ user, code: "12345678", service: "gateway", clientAddress: "192.0.2.44" }), { outcome: "accepted", via: "scratch" });
    assert.deepEqual(await server.client.decide({ user, code: "12345678", service: "gateway", clientAddress: "192.0.2.44" }), { outcome: "rejected", reason: "wrong" }, "an emergency code is used once");
    const rows = await auditOf(store, user, 3);
    assert.deepEqual(
      rows.map((r) => [r.service, r.clientAddress, r.result, r.reason, r.via]).reverse(),
      [
        ["gateway", "192.0.2.44", "accepted", "accepted", "totp"],
        ["gateway", "192.0.2.44", "accepted", "accepted", "scratch"],
        ["gateway", "192.0.2.44", "rejected", "wrong", null],
      ],
    );
    assert.ok(!JSON.stringify(rows).includes("12345678") && !JSON.stringify(rows).includes(code), "never a code in the audit table");
  });
});
