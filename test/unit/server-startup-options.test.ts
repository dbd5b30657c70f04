// otpgate server's start-up option logic: which clients-file lines cover a local client, and
// --audit-retention-days.

import assert from "node:assert/strict";
import { test } from "node:test";
import { auditRetentionOf, DEFAULT_AUDIT_RETENTION_DAYS, localClientPrefixes } from "../../src/adapters/cli/commands/server-main.js";
import { parseClients, prefixesOverlap, prefixOf } from "../../src/adapters/radius/clients.js";

const SECRET = "0123456789abcdef0123";

test("prefixOf and prefixesOverlap: containment either way, never across families", () => {
  const p = (s: string) => prefixOf(s)!;
  assert.equal(prefixesOverlap(p("127.0.0.0/8"), p("127.0.0.0/24")), true);
  assert.equal(prefixesOverlap(p("127.0.0.0/24"), p("127.0.0.0/8")), true);
  assert.equal(prefixesOverlap(p("0.0.0.0/0"), p("127.0.0.1")), true);
  assert.equal(prefixesOverlap(p("10.0.0.0/8"), p("127.0.0.0/8")), false);
  assert.equal(prefixesOverlap(p("::/0"), p("::1")), true);
  assert.equal(prefixesOverlap(p("::/0"), p("127.0.0.1")), false, "IPv4 is not inside ::/0 (mapped addresses count as IPv4)");
  assert.equal(prefixesOverlap(p("2001:db8::/32"), p("::1")), false);
  assert.deepEqual(prefixOf("::ffff:10.1.2.3"), prefixOf("10.1.2.3"));
  assert.equal(prefixOf("10.0.0.0/33"), null);
  assert.equal(prefixOf("nonsense"), null);
});

test("the lines over the default local clients (127.0.0.0/8, ::1) and over a given --local-clients", () => {
  const clients = parseClients(`192.0.2.0/24 ${SECRET}\n127.0.0.0/24 ${SECRET}\n::/0 ${SECRET}\n10.0.0.0/8 ${SECRET}\n`);
  const over = (spec: string | undefined) => [...new Set(localClientPrefixes(spec).flatMap((p) => clients.overlapping(p)))].sort();
  assert.deepEqual(over(undefined), ["127.0.0.0/24", "::/0"]);
  assert.deepEqual(over("127.0.0.1"), ["127.0.0.0/24"]);
  assert.deepEqual(over("10.9.9.9"), ["10.0.0.0/8"]);
  assert.deepEqual(over("198.51.100.7"), []);
  assert.throws(() => localClientPrefixes("nonsense"), /--local-clients: "nonsense" is not an address/);
});

test("--audit-retention-days: default 90, 0 keeps everything, only with --store, a number of days", () => {
  assert.equal(DEFAULT_AUDIT_RETENTION_DAYS, 90);
  assert.equal(auditRetentionOf(undefined, false), 90);
  assert.equal(auditRetentionOf(undefined, true), 90);
  assert.equal(auditRetentionOf("0", true), 0);
  assert.equal(auditRetentionOf("365", true), 365);
  assert.throws(() => auditRetentionOf("30", false), /--audit-retention-days goes with --store/);
  for (const bad of ["-1", "1.5", "", "ninety", "100001"]) assert.throws(() => auditRetentionOf(bad, true), /--audit-retention-days must be a number of days from 0/, bad);
});
