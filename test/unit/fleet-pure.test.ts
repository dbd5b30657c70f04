// The fleet store's parts that need no database (issue 11): the key file, sealing secrets and
// digesting codes, splitting and rendering documents with fillers, the per-user gate, the audit
// queue's bounds, --since.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { parseSince } from "../../src/adapters/cli/commands/db-main.js";
import { FleetUnavailable } from "../../src/ports/fleet.js";
import { AuditQueue, QUEUE_MAX } from "../../src/stores/pg/audit.js";
import { codeDigest, openSecret, sealSecret } from "../../src/stores/pg/crypto.js";
import { emergencyCandidate, fillerFor, optionsOf, renderDocument, splitDocument } from "../../src/stores/pg/document.js";
import { FleetKeyMissing, FleetRowInvalid } from "../../src/stores/pg/errors.js";
import { parseKeyFile } from "../../src/stores/pg/key-file.js";
import type { FleetPool } from "../../src/stores/pg/pool.js";
import { MAX_WAITERS, UserGate } from "../../src/stores/pg/user-gate.js";

const k = () => randomBytes(32).toString("base64");

test("key file: the last key is current; comments and blanks skipped; bad lines named", () => {
  const keys = parseKeyFile(`# comment\n\nk1 ${k()}\nk2 ${k()}\n`, "/x/db.key");
  assert.equal(keys.current, "k2");
  assert.deepEqual([...keys.keys.keys()], ["k1", "k2"]);
  assert.throws(() => parseKeyFile(`k1 ${randomBytes(16).toString("base64")}\n`, "/x/db.key"), /line 1 \(key k1\): the key is 16 bytes, it must be 32/);
  assert.throws(() => parseKeyFile(`k1\n`, "/x/db.key"), /\/x\/db.key line 1: expected "<key id> <base64 key>"/);
  assert.throws(() => parseKeyFile(`k1 ${k()}\nk1 ${k()}\n`, "/x/db.key"), /line 2: the key id k1 appears twice/);
  assert.throws(() => parseKeyFile(`k/1 ${k()}\n`, "/x/db.key"), /a key id is 1-40 letters/);
  assert.throws(() => parseKeyFile(`# only comments\n`, "/x/db.key"), /holds no key; create it with otpgate db migrate --create-key-file/);
});

test("sealed secrets: bound to user and key id (AAD); an unknown key id is FleetKeyMissing naming it", () => {
  const keys = parseKeyFile(`old ${k()}\nnew ${k()}\n`, "/x/db.key");
  const { keyId, sealed } = sealSecret(keys, "alice", "JBSWY3DPEHPK3PXP");
  assert.equal(keyId, "new");
  assert.equal(openSecret(keys, "alice", "new", sealed).toString("latin1"), "JBSWY3DPEHPK3PXP");
  assert.ok(!sealed.includes(Buffer.from("JBSWY3DPEHPK3PXP")));
  assert.throws(
    () => openSecret(keys, "mallory", "new", sealed),
    (e: Error) => e instanceof FleetRowInvalid && /does not decrypt/.test(e.message),
  );
  assert.throws(() => openSecret(keys, "alice", "old", sealed), FleetRowInvalid, "relabelled with another key id");
  assert.throws(
    () => openSecret(keys, "alice", "gone", sealed),
    (e: Error) => e instanceof FleetKeyMissing && e instanceof FleetUnavailable && /key id gone/.test(e.message),
  );
  const twice = sealSecret(keys, "alice", "JBSWY3DPEHPK3PXP").sealed;
  assert.notDeepEqual(twice, sealed, "a fresh IV each time");
  // Digests: per user, per key, and not the code.
  const d = codeDigest(keys, "new", "alice", "12345678");
  assert.deepEqual(codeDigest(keys, "new", "alice", "12345678"), d);
  assert.notDeepEqual(codeDigest(keys, "new", "bob", "12345678"), d);
  assert.notDeepEqual(codeDigest(keys, "old", "alice", "12345678"), d);
});

test("documents: split into secret, options, codes; render puts them back; fillers never equal the entry", () => {
  const text = `SECRET\n" RATE_LIMIT 3 30\n" TOTP_AUTH\n12345678\n23456789\n`;
  const split = splitDocument(text);
  assert.deepEqual(split, { secretLine: "SECRET", options: `" RATE_LIMIT 3 30\n" TOTP_AUTH\n`, codes: ["12345678", "23456789"] });
  assert.equal(renderDocument(split.secretLine, split.options, split.codes), text);
  assert.equal(renderDocument("S", "", []), "S\n");
  assert.equal(renderDocument("S", `" TOTP_AUTH`, ["10000000"]), `S\n" TOTP_AUTH\n10000000\n`);
  assert.throws(() => splitDocument("S\ngarbage\n"), /neither an option .* nor an emergency code/);
  assert.throws(() => splitDocument("S\0\n"), /NUL/);
  assert.throws(() => optionsOf(`OTHER\n" TOTP_AUTH\n`, "SECRET"), /refusing to change the secret/);
  assert.equal(emergencyCandidate("12345678"), "12345678");
  assert.equal(emergencyCandidate("pw12345678"), "12345678");
  assert.equal(emergencyCandidate("123456"), null);
  assert.equal(emergencyCandidate("09999999"), null, "below 10000000 is never an emergency code");
  assert.equal(emergencyCandidate(undefined), null);
  for (const c of ["10000000", "10000001", "99999999", null]) assert.notEqual(fillerFor(c), c);
  assert.ok(/^[1-9][0-9]{7}$/.test(fillerFor(null)));
});

test("the user gate: one at a time per user, others unaffected, bounded waiters, time-limited waits", async () => {
  const gate = new UserGate(200);
  const leaveA = await gate.enter("a");
  const leaveB = await gate.enter("b");
  let second = false;
  const waiting = gate.enter("a").then((leave) => {
    second = true;
    return leave;
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(second, false);
  leaveA();
  (await waiting)();
  leaveB();
  assert.equal(gate.size, 0, "lanes are removed when empty");
  // Bounded and time-limited.
  const slow = new UserGate(100);
  const holder = await slow.enter("x");
  const many = Array.from({ length: MAX_WAITERS + 3 }, () =>
    slow.enter("x").then(
      (l) => (l(), "got"),
      (e: Error) => e,
    ),
  );
  const results = await Promise.all(many);
  assert.equal(results.filter((r) => r instanceof FleetUnavailable && /too many decisions/.test(r.message)).length, 3);
  assert.equal(results.filter((r) => r instanceof FleetUnavailable && /took too long/.test(r.message)).length, MAX_WAITERS);
  holder();
  assert.equal(slow.size, 0);
});

test("the audit queue: bounded, never throws into the caller, reports drops once per interval", async () => {
  const logged: string[] = [];
  let calls = 0;
  const failing = { query: async () => (calls++, Promise.reject(new FleetUnavailable("down"))) } as unknown as FleetPool;
  const q = new AuditQueue(
    failing,
    (_l, m) => logged.push(m),
    () => 1000,
  );
  const rec = { at: 1, user: "u", host: "h", service: "radius", clientAddress: null, result: "rejected", reason: "wrong", via: null } as const;
  for (let i = 0; i < QUEUE_MAX + 50; i++) q.add(rec);
  await q.flush();
  q.stop();
  // A database that is down is not asked again for every record (before: one failing INSERT per
  // record beyond the first batch, 20 000 of them).
  assert.ok(calls >= 1 && calls <= 2, `${calls} writes tried`);
  assert.equal(logged.length, 1, `one report, not one per record: ${logged.join(" | ")}`);
  assert.match(logged[0]!, /audit: 1 records dropped|audit: .* records dropped/);
});

test("--since: durations and ISO times", () => {
  const now = Date.UTC(2026, 0, 2);
  assert.equal(parseSince("1h", now), now - 3_600_000);
  assert.equal(parseSince("2d", now), now - 2 * 86_400_000);
  assert.equal(parseSince("2026-01-01T00:00Z", now), Date.UTC(2026, 0, 1));
  assert.throws(() => parseSince("yesterday", now), /give a duration/);
  assert.throws(() => parseSince("1y", now), /give a duration/);
});
