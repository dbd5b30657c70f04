// Red team RT-B F5, F6: configuration mistakes `otpgate gateway --check-config` used to accept
// silently (exit 0, no word): trusted_proxies ranges that trust every IPv4 client, a fleet database
// reached without a checked TLS connection, metrics on a public address, per-user pacing turned off,
// sessions_file that store: makes unused. Each is now refused (exit 2) or warned about (exit 0 and a
// warning on stderr); the messages say what to write instead.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { run } from "../../src/adapters/cli/commands/gateway.js";
import { gatewayConfigWarnings, parseGatewayConfig } from "../../src/adapters/http/gateway-config.js";
import { isTrustedProxy, parseProxyEntry, parseTrustedProxies } from "../../src/core/web/client-address.js";
import { tempDir } from "../helpers/system.js";

async function checkConfig(t: TestContext, yaml: string): Promise<{ status: number; out: string; err: string }> {
  const dir = tempDir(t);
  mkdirSync(join(dir, "k"), { mode: 0o700 });
  const path = join(dir, "gw.yaml");
  writeFileSync(path, `public_url: http://app.test\nupstream: http://127.0.0.1:9\nkeys_file: ${join(dir, "k", "gateway.keys")}\n${yaml}\n`);
  const out: string[] = [];
  const err: string[] = [];
  const status = await run(["--config", path, "--check-config"], { out: (l) => out.push(l), err: (l) => err.push(l), prompt: () => {} });
  return { status, out: out.join("\n"), err: err.filter((l) => !/must not run as root/.test(l)).join("\n") };
}

const BASE = "public_url: http://app.test\nupstream: http://127.0.0.1:9\n";
const warnings = (yaml: string) => gatewayConfigWarnings(parseGatewayConfig(`${BASE}${yaml}\n`));

test("F5: an IPv4-mapped range is the IPv4 range it is, printed with its IPv4 prefix", () => {
  const r = parseProxyEntry("::ffff:10.0.0.0/104");
  assert.equal(typeof r, "object");
  assert.equal((r as { text: string }).text, "10.0.0.0/8");
  assert.equal((parseProxyEntry("::ffff:192.0.2.7") as { text: string }).text, "192.0.2.7");
  assert.equal((parseProxyEntry("::ffff:192.0.2.0/120") as { text: string }).text, "192.0.2.0/24");
  const t = parseTrustedProxies(["::ffff:10.0.0.0/104"]);
  assert.equal(isTrustedProxy("10.1.2.3", t), true);
  assert.equal(isTrustedProxy("11.1.2.3", t), false);
});

test("F5: ranges that take in every IPv4 client, IPv6 special blocks, or more than a /8 (IPv4) or /32 (IPv6) are refused, saying what to write", () => {
  const cases: [string, RegExp][] = [
    ["::ffff:0:0/96", /"::ffff:0:0\/96" is every IPv4 address \(0\.0\.0\.0\/0\)/],
    ["::ffff:0:0/97", /is wider than \/8/],
    ["::/64", /"::\/64" contains the IPv4-mapped addresses \(::ffff:0:0\/96: every IPv4 client\)/],
    ["::/96", /contains the loopback address \(::1\)/],
    ["::fffe:0:0/95", /contains the IPv4-mapped addresses/],
    ["::/127", /contains the loopback address \(::1\)/],
    ["64:ff9b::/64", /contains the NAT64 addresses \(64:ff9b::\/96: every IPv4 client through NAT64\)/],
    ["0.0.0.0/1", /"0\.0\.0\.0\/1" is wider than \/8: list your proxies' addresses, or the smallest ranges that hold them \(such as 10\.0\.0\.0\/8 or 192\.0\.2\.0\/24\)/],
    ["128.0.0.0/1", /is wider than \/8/],
    ["10.0.0.0/7", /is wider than \/8/],
    ["fc00::/6", /is wider than \/32/],
    ["2001::/31", /"2001::\/31" is wider than \/32: list your proxies' addresses, or the smallest ranges that hold them \(such as 2001:db8::\/48\)/],
    ["0.0.0.0/0", /would trust every address/],
  ];
  for (const [entry, message] of cases) {
    const r = parseProxyEntry(entry);
    assert.equal(typeof r, "string", entry);
    assert.match(r as string, message, entry);
  }
  for (const ok of ["10.0.0.0/8", "2001:db8::/32", "::1", "::ffff:127.0.0.1", "64:ff9b::c000:207", "fd00::/8"]) assert.equal(typeof parseProxyEntry(ok), "object", ok);
});

test("F5: listed ranges that together hold a lot of public address space are warned about; the loopback warning names only loopback entries", () => {
  const w = warnings("listen: 10.0.0.5:41201\ntrusted_proxies: [20.0.0.0/8, 10.0.0.0/8]");
  assert.equal(w.length, 1, JSON.stringify(w));
  assert.match(w[0]!, /^trusted_proxies: the listed ranges hold 16777216 public IPv4 address\(es\) \(20\.0\.0\.0\/8\)/);
  assert.match(w[0]!, /any client there can choose the address/);
  assert.deepEqual(warnings("listen: 10.0.0.5:41201\ntrusted_proxies: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 192.0.2.0/24, 'fd00::/8']"), [], "private ranges and small public ones are fine");
  const v6 = warnings("listen: 10.0.0.5:41201\ntrusted_proxies: ['2001:db8::/32']");
  assert.equal(v6.length, 1);
  assert.match(v6[0]!, /public IPv6 space of 2\^96 address\(es\) \(2001:db8::\/32\)/);
  const lo = warnings("trusted_proxies: [127.0.0.1, 10.0.0.0/8, '::1']");
  assert.equal(lo.length, 2);
  assert.match(lo[0]!, /^trusted_proxies: 127\.0\.0\.1 is a loopback address/);
  assert.match(lo[1]!, /^trusted_proxies: ::1 is a loopback address/);
});

test("F5: --check-config refuses what trusts every IPv4 client (exit 2)", async (t) => {
  for (const [yaml, message] of [
    ['listen: 10.0.0.5:41201\ntrusted_proxies: ["::ffff:0:0/96"]', /trusted_proxies\[0\]: "::ffff:0:0\/96" is every IPv4 address/],
    ['listen: 10.0.0.5:41201\ntrusted_proxies: ["::/64"]', /trusted_proxies\[0\]: "::\/64" contains the IPv4-mapped addresses/],
    [
      'listen: 10.0.0.5:41201\ntrusted_proxies: ["0.0.0.0/1", "128.0.0.0/1"]',
      /trusted_proxies\[0\]: "0\.0\.0\.0\/1" is wider than \/8[^\n]*\n {2}trusted_proxies\[1\]: "128\.0\.0\.0\/1" is wider than \/8/,
    ],
  ] as const) {
    const r = await checkConfig(t, yaml);
    assert.equal(r.status, 2, yaml);
    assert.match(r.err, message, yaml);
    assert.equal(r.out, "", yaml);
  }
  const ok = await checkConfig(t, "listen: 10.0.0.5:41201\ntrusted_proxies: [20.0.0.0/8]");
  assert.equal(ok.status, 0, ok.err);
  assert.match(ok.err, /warning: trusted_proxies: the listed ranges hold 16777216 public IPv4 address/);
});

test("F6: store: to a host that is not loopback without sslmode=verify-full: an error for disable/allow/prefer, a warning otherwise", async (t) => {
  for (const mode of ["disable", "allow", "prefer", "no-verify"]) {
    const r = await checkConfig(t, `store: postgres://gw@db.example.com:5432/otpgate?sslmode=${mode}`);
    assert.equal(r.status, 2, mode);
    assert.match(
      r.err,
      new RegExp(
        `store: sslmode=${mode} to db\\.example\\.com, which is not this host: the revocations and bans would cross the network unencrypted or with an unchecked server; anyone on the path could hide a logout from the other instances or ban every client\\. Write sslmode=verify-full&sslrootcert=CA`,
      ),
      mode,
    );
  }
  for (const [url, message] of [
    [
      "postgres://gw@db.invalid:5432/otpgate",
      /warning: store: no sslmode for db\.invalid, which is not this host: without sslmode \(or PGSSLMODE\) the connection is not encrypted; write sslmode=verify-full&sslrootcert=CA/,
    ],
    [
      "postgres://gw@db.invalid:5432/otpgate?sslmode=require",
      /warning: store: sslmode=require to db\.invalid: the connection is encrypted but the server's name is not checked; write sslmode=verify-full&sslrootcert=CA/,
    ],
  ] as const) {
    const r = await checkConfig(t, `store: ${url}`);
    assert.equal(r.status, 0, r.err);
    assert.match(r.err, message, url);
  }
  for (const url of [
    "postgres://gw@127.0.0.1:5432/otpgate?sslmode=disable",
    "postgres://gw@localhost/otpgate",
    "postgres://gw@localhost/otpgate?host=/run/postgresql",
    "postgres://gw@[::1]:5432/otpgate",
  ]) {
    assert.deepEqual(
      warnings(`store: ${url}`).filter((w) => w.startsWith("store:")),
      [],
      url,
    );
    assert.doesNotThrow(() => parseGatewayConfig(`${BASE}store: ${url}\n`), url);
  }
  assert.deepEqual(warnings("store: postgres://gw@db.example.com:5432/otpgate?sslmode=verify-full&sslrootcert=/etc/otpgate/db-ca.crt"), []);
});

test("F6: metrics_listen on an address that is not loopback is warned about", async (t) => {
  const r = await checkConfig(t, "metrics_listen: 0.0.0.0:41202");
  assert.equal(r.status, 0, r.err);
  assert.match(
    r.err,
    /warning: metrics_listen: 0\.0\.0\.0:41202 is not a loopback address: anyone who can reach it reads the gateway's counters \(sign-ins, failures, bans\)\. Use 127\.0\.0\.1:PORT and let the metrics collector reach it there, or firewall the port/,
  );
  assert.deepEqual(warnings("metrics_listen: 127.0.0.1:41202"), []);
  assert.deepEqual(warnings("metrics_listen: '[::1]:41202'"), []);
  assert.equal(warnings("metrics_listen: 10.1.2.3:41202").length, 1);
});

test("F6: regulation.user_delay_max below 1s is refused: it turns off per-user pacing", async (t) => {
  for (const v of ["0s", "500ms"]) {
    const r = await checkConfig(t, `regulation:\n  user_delay_max: ${v}`);
    assert.equal(r.status, 2, v);
    assert.match(
      r.err,
      /regulation\.user_delay_max: must be at least 1s \(up to 60s; default 10s\): below that it turns off per-user pacing, and guessing one user's code from many addresses is then limited by nothing/,
      v,
    );
  }
  assert.equal(parseGatewayConfig(`${BASE}regulation:\n  user_delay_max: 1s\n`).regulation.userDelayMaxMs, 1000);
});

test("F6: sessions_file together with store: is refused (it would be ignored)", async (t) => {
  const r = await checkConfig(t, "store: postgres://gw@127.0.0.1:5432/otpgate\nsessions_file: /var/lib/otpgate/gateway.sessions");
  assert.equal(r.status, 2);
  assert.match(r.err, /sessions_file: is not used with store: \(revocations and bans are kept in the database\); remove sessions_file, or remove store to keep them in the file/);
});
