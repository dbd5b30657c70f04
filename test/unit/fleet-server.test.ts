// otpgate server on the fleet store, in-process (issue 11): the clients file (parsing, the most
// specific prefix wins, IPv4-mapped sources), the RADIUS pipeline with network clients (unknown
// sources and unsigned requests dropped before any lookup; answers signed with the client's
// secret), a database that cannot be reached (the decision is "unavailable", one log line per
// outage), the audit record of a decision (never the code) and the API's account() on the fleet.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { test } from "node:test";
import { ClientsFileError, parseClients } from "../../src/adapters/radius/clients.js";
import { RadiusLog } from "../../src/adapters/radius/log.js";
import { ACCESS_ACCEPT } from "../../src/adapters/radius/packet.js";
import { radiusServer } from "../../src/adapters/radius/server.js";
import { fingerprintOf, localDecisionService } from "../../src/adapters/server/decisions.js";
import { deferredFleet, configProblem } from "../../src/adapters/server/deferred-fleet.js";
import { auditRecordOf } from "../../src/adapters/server/fleet-audit.js";
import { FleetHealth, watchedFleet } from "../../src/adapters/server/fleet-health.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { FleetUnavailable, type AuditRecord, type FleetStore } from "../../src/ports/fleet.js";
import type { AccountStore } from "../../src/ports/index.js";
import type { LoginDecision } from "../../src/services/login.js";
import { decideResident } from "../../src/services/resident-decision.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { codeAt } from "../helpers/otp.js";

const radius = createRequire(import.meta.url)("radius") as {
  encode(args: { code: string; secret: string; identifier: number; attributes: [string, string][]; add_message_authenticator?: boolean }): Buffer;
  verify_response(args: { request: Buffer; response: Buffer; secret: string }): boolean;
};

const KEY = "JBSWY3DPEHPK3PXP";
const NOW = 1_700_000_000_000;
const CODE = codeAt(KEY, Math.floor(NOW / 30_000));
const A = "secret-of-client-a-0123456789";
const B = "secret-of-the-wide-net-0123456";

test("clients file: v4/v6, comments, most specific prefix wins, IPv4-mapped sources; unknown -> null", () => {
  const c = parseClients(`# clients\n\n192.0.2.0/24 ${B}\n192.0.2.10 ${A}\n2001:db8::/64   ${A}-v6\n::1 ${A}-lo6\n`);
  assert.equal(c.size, 4);
  assert.equal(c.clientOf("192.0.2.10")?.name, "192.0.2.10");
  assert.equal(c.clientOf("192.0.2.10")?.secret.toString(), A);
  assert.equal(c.clientOf("192.0.2.11")?.name, "192.0.2.0/24");
  assert.equal(c.clientOf("::ffff:192.0.2.10")?.name, "192.0.2.10", "an IPv4-mapped source on a udp6 socket");
  assert.equal(c.clientOf("2001:db8::5")?.secret.toString(), `${A}-v6`);
  assert.equal(c.clientOf("2001:db8:0:1::5"), null);
  assert.equal(c.clientOf("::1")?.name, "::1");
  assert.equal(c.clientOf("192.0.3.1"), null);
  assert.equal(c.clientOf("not an address"), null);
  assert.equal(parseClients(`0.0.0.0/0 ${A}`).clientOf("203.0.113.9")?.name, "0.0.0.0/0");
});

test("clients file: every malformed line is refused with its line number", () => {
  const bad: [string, RegExp][] = [
    [`192.0.2.1/24 ${A}`, /line 1: "192\.0\.2\.1\/24" has bits set beyond its \/24 prefix/],
    [`192.0.2.1 short`, /line 1: the secret of 192\.0\.2\.1 is shorter than 16 characters/],
    [`# c\n192.0.2.300 ${A}`, /line 2: "192\.0\.2\.300" is not an IPv4 or IPv6 address/],
    [`192.0.2.0/33 ${A}`, /prefix length of "192\.0\.2\.0\/33" must be 0-32/],
    [`192.0.2.1 ${A}\n192.0.2.1/32 ${B}`, /line 2: 192\.0\.2\.1\/32 is listed twice/],
    [`192.0.2.1`, /line 1: expected "ADDRESS-or-CIDR SECRET"/],
    [`::ffff:192.0.2.1 ${A}`, /without ::ffff:/],
    [`fe80::1%eth0 ${A}`, /not an IPv4 or IPv6 address/],
  ];
  for (const [text, message] of bad) assert.throws(() => parseClients(text), (err: unknown) => err instanceof ClientsFileError && message.test(err.message), text);
});

function harness(clientsText: string) {
  const store = new MemoryAccountStore(`${KEY}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`);
  const sent: { packet: Buffer; address: string }[] = [];
  const lookups: string[] = [];
  const audits: string[] = [];
  const lines: string[] = [];
  const server = radiusServer({
    secret: Buffer.from("the-local-secret-0123456789"),
    clients: parseClients(clientsText),
    send: (packet, _port, address) => sent.push({ packet, address }),
    lookup: async (name) => {
      lookups.push(name);
      return { name };
    },
    storeFor: () => store,
    audit: (e) => audits.push(`${e.user} ${e.service} ${e.clientAddress} ${e.decision.outcome}`),
    clock: { nowMs: () => NOW },
    log: new RadiusLog({ nowMs: () => NOW, out: (l) => lines.push(l) }),
    nullok: false,
    noSkewAdjust: true,
    rejectFloorMs: 0,
  });
  return { server, store, sent, lookups, audits, lines };
}

const request = (secret: string, signed: boolean, code = CODE) =>
  radius.encode({
    code: "Access-Request",
    secret,
    identifier: 7,
    attributes: [
      ["User-Name", "alice"],
      ["User-Password", code],
    ],
    add_message_authenticator: signed,
  });
const settle = () => new Promise((r) => setTimeout(r, 30));

test("RADIUS with a clients file: unknown source, unsigned or another client's secret are dropped before any lookup; the client's own secret signs the answer", async () => {
  const h = harness(`192.0.2.0/24 ${B}\n192.0.2.10 ${A}\n`);
  const before = h.store.current;
  h.server.handle(request(A, true), { address: "198.51.100.1", port: 1812 });
  h.server.handle(request(A, false), { address: "192.0.2.10", port: 1812 });
  h.server.handle(request(B, true), { address: "192.0.2.10", port: 1813 });
  h.server.handle(request(A, true), { address: "192.0.2.11", port: 1814 });
  await settle();
  assert.deepEqual(h.lookups, [], "no lookup for a dropped request");
  assert.equal(h.store.current, before, "no state change");
  assert.equal(h.sent.length, 0, "no answer");
  assert.equal(h.server.counters.unknownClient, 1);
  assert.equal(h.server.counters.unsigned, 1);
  assert.equal(h.server.counters.dropped, 4);
  assert.deepEqual(h.audits, [], "nothing audited");

  const req = request(A, true);
  h.server.handle(req, { address: "::ffff:192.0.2.10", port: 1900 });
  await settle();
  assert.equal(h.sent.length, 1);
  assert.equal(h.sent[0]!.packet[0], ACCESS_ACCEPT);
  assert.ok(radius.verify_response({ request: req, response: h.sent[0]!.packet, secret: A }), "signed with the client's secret");
  assert.deepEqual(h.audits, ["alice radius ::ffff:192.0.2.10 accepted"]);
  assert.match(h.lines.find((l) => l.includes('"event":"login"'))!, /"radiusClient":"192\.0\.2\.10"/);
});

test("RADIUS with a clients file: loopback (a local client) keeps the --secret-file secret and may be unsigned; with no local secret it is dropped", async () => {
  const h = harness(`192.0.2.0/24 ${B}\n`);
  h.server.handle(request("the-local-secret-0123456789", false), { address: "127.0.0.1", port: 2000 });
  await settle();
  assert.equal(h.sent[0]?.packet[0], ACCESS_ACCEPT);
  const none = radiusServer({ ...harnessDeps(), secret: null, clients: parseClients(`192.0.2.0/24 ${B}\n`) });
  none.handle(request("the-local-secret-0123456789", false), { address: "127.0.0.1", port: 2001 });
  await settle();
  assert.equal(none.counters.unknownClient, 1);
});

function harnessDeps() {
  return {
    send: () => {},
    lookup: async (name: string) => ({ name }),
    storeFor: () => new MemoryAccountStore(null),
    clock: { nowMs: () => NOW },
    log: new RadiusLog({ nowMs: () => NOW, out: () => {} }),
    nullok: false,
    noSkewAdjust: true,
  };
}

const FACTORS = { password: false, requirePublickey: false, nullok: false, noSkewAdjust: true, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false } as const;

test("the database cannot be reached: the decision is an error 'unavailable' (never accepted), without the driver's text; audited once", async () => {
  const decided: LoginDecision[] = [];
  const down: AccountStore = {
    acquire: async () => {
      throw new FleetUnavailable("connect ECONNREFUSED /tmp/x/.s.PGSQL.5432");
    },
  };
  const d = await decideResident(
    { lookup: async (name) => ({ name }), storeFor: () => down, clock: { nowMs: () => NOW }, macFactory: nodeMacFactory, decided: (_r, x) => decided.push(x) },
    { user: "alice", code: CODE, service: "radius", factors: FACTORS },
  );
  assert.equal(d !== "busy" && d.outcome, "error");
  assert.equal(d !== "busy" && d.outcome !== "accepted" && d.reason, "unavailable");
  assert.doesNotMatch(JSON.stringify(d), /ECONNREFUSED|PGSQL/);
  assert.equal(decided.length, 1);
  // A commit that fails mid-way: also unavailable, not "internal".
  const store = new MemoryAccountStore(`${KEY}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`);
  const failingCommit: AccountStore = {
    acquire: async () => {
      const l = (await store.acquire())!;
      return {
        ...l,
        release: l.release,
        commit: async () => {
          throw new FleetUnavailable("query timeout");
        },
      };
    },
  };
  const c = await decideResident(
    { lookup: async (name) => ({ name }), storeFor: () => failingCommit, clock: { nowMs: () => NOW }, macFactory: nodeMacFactory },
    { user: "alice", code: CODE, service: "radius", factors: FACTORS },
  );
  assert.deepEqual(c !== "busy" && [c.outcome, c.outcome !== "accepted" && c.reason], ["error", "unavailable"]);
});

test("the audit record of a decision: host, service, client, result, reason, via; never the code", () => {
  const rejected = auditRecordOf({ user: "bob", service: "sshd", clientAddress: "192.0.2.7", decision: { outcome: "rejected", reason: "wrong", detail: { problem: CODE } } }, NOW, "web1");
  assert.deepEqual(rejected, { at: NOW, user: "bob", host: "web1", service: "sshd", clientAddress: "192.0.2.7", result: "rejected", reason: "wrong", via: null });
  const accepted = auditRecordOf({ user: "bob", service: "radius", clientAddress: null, decision: { outcome: "accepted", via: "scratch", detail: { remaining: 4 } } }, NOW, "web1");
  assert.equal(accepted.reason, "accepted");
  assert.equal(accepted.via, "scratch");
  assert.ok(!JSON.stringify([rejected, accepted]).includes(CODE));
});

function fakeFleet(over: Partial<FleetStore> = {}): FleetStore & { audits: AuditRecord[] } {
  const audits: AuditRecord[] = [];
  const fail = async (): Promise<never> => {
    throw new Error("not in this test");
  };
  return {
    audits,
    account: () => ({ acquire: fail }),
    put: fail,
    document: fail,
    replaceScratchCodes: fail,
    remove: fail,
    list: fail,
    audit: (r) => audits.push(r),
    auditRecords: fail,
    close: async () => {},
    ...over,
  };
}

test("one log line per outage: many failures -> one 'fleet-unavailable', then one 'fleet-back'; a second outage -> a second line", async () => {
  let now = NOW;
  const logs: { kind: string; fields: Record<string, unknown> }[] = [];
  const health = new FleetHealth(
    () => now,
    (_level, kind, fields) => logs.push({ kind, fields }),
  );
  let up = false;
  const fleet = watchedFleet(
    fakeFleet({
      document: async () => {
        if (!up) throw new FleetUnavailable("the fleet database postgres@db:5432/otpgate is unavailable (ECONNREFUSED)");
        return null;
      },
    }),
    health,
  );
  for (let i = 0; i < 50; i++) await assert.rejects(fleet.document("alice"), FleetUnavailable);
  assert.deepEqual(
    logs.map((l) => l.kind),
    ["fleet:unavailable"],
  );
  assert.match(String(logs[0]!.fields.message), /every login is refused \(closed by default\)/);
  now += 42_000;
  up = true;
  assert.equal(await fleet.document("alice"), null);
  await fleet.document("alice");
  assert.deepEqual(
    logs.map((l) => l.kind),
    ["fleet:unavailable", "fleet:back"],
  );
  assert.equal(logs[1]!.fields.failed, 50);
  assert.equal(logs[1]!.fields.downSeconds, 42);
  up = false;
  await assert.rejects(fleet.document("alice"));
  assert.equal(logs.filter((l) => l.kind === "fleet:unavailable").length, 2);
});

test("a server that starts while the database is down keeps trying (at most every 2 s); a TLS or login mistake stops it with the fix", async () => {
  let now = NOW;
  let opens = 0;
  let reachable = false;
  const real = fakeFleet({ document: async () => null });
  const unavailable: FleetUnavailable[] = [];
  const fleet = await deferredFleet(
    async () => {
      opens++;
      if (!reachable) throw new FleetUnavailable("the fleet database x is unavailable (ECONNREFUSED); the login is refused: try again when it is back");
      return real;
    },
    () => now,
    (e) => unavailable.push(e),
  );
  assert.equal(unavailable.length, 1);
  await assert.rejects(fleet.document("a"), FleetUnavailable);
  assert.equal(opens, 1, "not again within 2 s");
  now += 2500;
  reachable = true;
  assert.equal(await fleet.document("a"), null);
  assert.equal(opens, 2);
  await assert.rejects(
    deferredFleet(
      async () => {
        throw new FleetUnavailable("the fleet database x is unavailable (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain); the login is refused: try again when it is back");
      },
      () => now,
      () => {},
    ),
    /sslrootcert= in --store must name the CA file/,
  );
  assert.match(configProblem("(ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames)") ?? "", /does not name the host/);
  assert.match(configProblem("(28P01: password authentication failed for user x)") ?? "", /--db-password-file/);
  assert.equal(configProblem("(ECONNREFUSED: connect ECONNREFUSED)"), null);
});

test("API account() on the fleet: the fingerprint of the decrypted secret under the server key; not enrolled; unavailable -> busy (503)", async () => {
  const key = createHash("sha256").update("server key").digest();
  const logs: string[] = [];
  const docs: Record<string, string> = { alice: `${KEY}\n" TOTP_AUTH\n` };
  let down = false;
  const service = localDecisionService({
    fleet: fakeFleet({
      document: async (user) => {
        if (down) throw new FleetUnavailable("down");
        return docs[user] === undefined ? null : { text: docs[user]!, scratchCodesOmitted: 0 };
      },
    }),
    clock: { nowMs: () => NOW },
    macFactory: nodeMacFactory,
    factors: { requirePublickey: false, nullok: false, noSkewAdjust: true, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false },
    serverKey: key,
    invitesDir: "/nonexistent",
    log: (_l, kind) => logs.push(kind),
  });
  assert.deepEqual(await service.account({ user: "alice" }), { account: "enrolled", fingerprint: fingerprintOf(key, "alice", KEY) });
  assert.deepEqual(await service.account({ user: "no-such-user-in-passwd" }), { account: "not-enrolled" });
  down = true;
  await assert.rejects(service.account({ user: "alice" }), (err: Error) => err.name === "ServiceBusy" && !/down/.test(err.message));
});
