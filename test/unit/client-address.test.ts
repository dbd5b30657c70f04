// Who the client is (issue 9, finding 5): X-Forwarded-For is believed only from trusted proxies,
// walked from the right like nginx's real_ip_recursive; the default believes nobody.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../src/core/errors.js";
import { NO_TRUSTED_PROXIES, addressKey, clientAddress, formatIp, isTrustedProxy, normalizeAddress, parseIp, parseProxyEntry, parseTrustedProxies } from "../../src/core/web/client-address.js";

test("without trusted proxies X-Forwarded-For is never believed, not even from loopback", () => {
  for (const peer of ["127.0.0.1", "::1", "::ffff:127.0.0.1", "203.0.113.9"]) {
    const r = clientAddress(peer, ["6.6.6.6"], NO_TRUSTED_PROXIES);
    assert.equal(r.address, normalizeAddress(peer), peer);
    assert.equal(r.forwardedFor, normalizeAddress(peer), peer);
    assert.equal(r.known, true, peer);
  }
  assert.deepEqual(clientAddress("::ffff:127.0.0.1", [], NO_TRUSTED_PROXIES), { address: "127.0.0.1", forwardedFor: "127.0.0.1", known: true });
});

test("from an untrusted peer X-Forwarded-For is ignored even when proxies are configured", () => {
  const trusted = parseTrustedProxies(["10.0.0.0/8"]);
  assert.deepEqual(clientAddress("203.0.113.9", ["10.0.0.5, 6.6.6.6"], trusted), { address: "203.0.113.9", forwardedFor: "203.0.113.9", known: true });
});

test("from a trusted peer the walk goes right to left past trusted hops and stops at the first untrusted address", () => {
  const trusted = parseTrustedProxies(["127.0.0.1", "10.0.0.0/8", "2001:db8:1::/48"]);
  const cases: [string, string[], string, string][] = [
    // peer, X-Forwarded-For lines, client, chain
    ["127.0.0.1", ["198.51.100.4"], "198.51.100.4", "198.51.100.4, 127.0.0.1"],
    ["127.0.0.1", ["6.6.6.6, 198.51.100.4"], "198.51.100.4", "198.51.100.4, 127.0.0.1"],
    ["127.0.0.1", ["6.6.6.6, 198.51.100.4, 10.1.2.3"], "198.51.100.4", "198.51.100.4, 10.1.2.3, 127.0.0.1"],
    ["::ffff:10.0.0.1", ["6.6.6.6", "198.51.100.4", "10.9.9.9"], "198.51.100.4", "198.51.100.4, 10.9.9.9, 10.0.0.1"],
    ["2001:db8:1:2::7", ["2001:DB8:0:0:0:0:0:9, 2001:db8:1::1"], "2001:db8::9", "2001:db8::9, 2001:db8:1::1, 2001:db8:1:2::7"],
    ["127.0.0.1", ["10.0.0.2, 10.0.0.3"], "10.0.0.2", "10.0.0.2, 10.0.0.3, 127.0.0.1"], // all trusted: the leftmost
    ["127.0.0.1", ["::ffff:198.51.100.4"], "198.51.100.4", "198.51.100.4, 127.0.0.1"],
    ["127.0.0.1", [], "127.0.0.1", "127.0.0.1"],
    ["127.0.0.1", ["  198.51.100.4  "], "198.51.100.4", "198.51.100.4, 127.0.0.1"],
  ];
  for (const [peer, xff, address, chain] of cases) assert.deepEqual(clientAddress(peer, xff, trusted), { address, forwardedFor: chain, known: true }, `${peer} ${JSON.stringify(xff)}`);
});

test("a malformed entry a trusted hop wrote stops the walk: nothing to its left is believed, and the client is unknown (not the proxy)", () => {
  const trusted = parseTrustedProxies(["127.0.0.1", "10.0.0.0/8"]);
  const garbage = ["unknown", "", "198.51.100.4:0", "[2001:db8::1", "2001:db8::1%eth0", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "evil.example", "1.2.3.4 5.6.7.8", "_hidden"];
  for (const g of garbage) {
    const unknown = (writtenBy: string, chain: string) => ({ address: "unknown", forwardedFor: chain, known: false, notAnAddress: { entry: g.trim(), writtenBy } });
    assert.deepEqual(clientAddress("127.0.0.1", [`6.6.6.6, ${g}`], trusted), unknown("127.0.0.1", "unknown, 127.0.0.1"), JSON.stringify(g));
    assert.deepEqual(clientAddress("127.0.0.1", [`6.6.6.6, ${g}, 10.0.0.9`], trusted), unknown("10.0.0.9", "unknown, 10.0.0.9, 127.0.0.1"), JSON.stringify(g));
    // Left of the first untrusted address it is the client's own text: never read.
    assert.deepEqual(clientAddress("127.0.0.1", [`${g}, 6.6.6.6`], trusted), { address: "6.6.6.6", forwardedFor: "6.6.6.6, 127.0.0.1", known: true }, JSON.stringify(g));
  }
  assert.equal(clientAddress("127.0.0.1", ["6.6.6.6,"], trusted).address, "unknown", "a trailing comma is an empty entry");
});

test("a peer that is not an address is returned as is (never happens with a socket, never throws)", () => {
  assert.deepEqual(clientAddress("", ["6.6.6.6"], parseTrustedProxies(["10.0.0.0/8"])), { address: "", forwardedFor: "", known: true });
});

test("address parsing: exactly IPv4 and IPv6 (with :: and an IPv4 tail), canonical output", () => {
  const ok: [string, string][] = [
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8::1:0:0:1", "2001:db8::1:0:0:1"],
    ["1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["::ffff:c000:0201", "192.0.2.1"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["fe80::1:2:3:4", "fe80::1:2:3:4"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
  ];
  for (const [input, canonical] of ok) assert.equal(normalizeAddress(input), canonical, input);
  const bad = [
    "",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.04",
    "1.2.3.256",
    "1.2.3.-1",
    "1.2.3",
    ":::",
    "1:::2",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "12345::",
    "g::1",
    "::1.2.3.4:5",
    "1.2.3.4::",
    "::ffff:1.2.3.256",
    "fe80::1%eth0",
    "[::1]",
    "::1/128",
    "0x7f.0.0.1",
    "2130706433",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
  ];
  for (const input of bad) assert.equal(parseIp(input), null, JSON.stringify(input));
  assert.equal(formatIp(parseIp("::ffff:0:1")!), "0.0.0.1", "::ffff:0:1 is ::ffff:0.0.0.1");
  assert.equal(formatIp(parseIp("::ffff:0:0:1")!), "::ffff:0:0:1", "not IPv4-mapped");
});

test("trusted_proxies entries: addresses and CIDR ranges, IPv4 also matching its IPv4-mapped IPv6 form", () => {
  const t = parseTrustedProxies(["192.0.2.7", "10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32", "::1", "fd00::/8"]);
  assert.deepEqual(
    t.ranges.map((r) => r.text),
    ["192.0.2.7", "10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32", "::1", "fd00::/8"],
  );
  for (const a of ["192.0.2.7", "::ffff:192.0.2.7", "10.255.255.255", "172.31.0.1", "2001:db8:ffff::1", "::1", "fdff::1"]) assert.equal(isTrustedProxy(a, t), true, a);
  for (const a of ["192.0.2.8", "11.0.0.0", "172.32.0.1", "2001:db9::1", "::2", "fe00::1", "127.0.0.1", "garbage"]) assert.equal(isTrustedProxy(a, t), false, a);
  assert.equal(parseTrustedProxies(["1.2.3.4/32"]).ranges[0]!.text, "1.2.3.4");
  assert.equal(parseTrustedProxies(["2001:DB8::1/128"]).ranges[0]!.text, "2001:db8::1");
  assert.deepEqual(parseTrustedProxies([]), NO_TRUSTED_PROXIES);
});

test("bad trusted_proxies entries are named with what to write instead; every bad entry at once", () => {
  const cases: [string, RegExp][] = [
    ["proxy.example.com", /"proxy\.example\.com" is not an IP address or CIDR range; write one such as 192\.0\.2\.7, 10\.0\.0\.0\/8.*host names are not resolved/],
    ["10.0.0.1/8", /"10\.0\.0\.1\/8" has address bits set after the \/8 prefix; write 10\.0\.0\.0\/8/],
    ["2001:db8::1/32", /write 2001:db8::\/32/],
    ["10.0.0.0/33", /prefix length after "\/" must be a number from 0 to 32 for IPv4/],
    ["::/129", /from 0 to 128 for IPv6/],
    ["10.0.0.0/08", /prefix length/],
    ["10.0.0.0/", /prefix length/],
    ["0.0.0.0/0", /would trust every address/],
    ["1.2.3.4/0", /would trust every address/],
    ["::/0", /would trust every address/],
    ["fe80::1%eth0", /zone ids/],
    ["", /is not an IP address/],
  ];
  for (const [entry, message] of cases) {
    const r = parseProxyEntry(entry);
    assert.equal(typeof r, "string", entry);
    assert.match(r as string, message, entry);
  }
  assert.throws(
    () => parseTrustedProxies(["10.0.0.0/8", "nope", "10.0.0.1/8"]),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message ===
        'trusted_proxies[1]: "nope" is not an IP address or CIDR range; write one such as 192.0.2.7, 10.0.0.0/8, 2001:db8::1 or 2001:db8::/32 (host names are not resolved)\ntrusted_proxies[2]: "10.0.0.1/8" has address bits set after the /8 prefix; write 10.0.0.0/8',
  );
});

test("addressKey: IPv4 as is, IPv6 by its /64, IPv4-mapped as IPv4", () => {
  assert.equal(addressKey("203.0.113.9"), "203.0.113.9");
  assert.equal(addressKey("::ffff:203.0.113.9"), "203.0.113.9");
  assert.equal(addressKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64", "the same /64 is the same key");
  assert.equal(addressKey("2001:DB8:1:2::"), "2001:db8:1:2::/64");
  assert.notEqual(addressKey("2001:db8:1:3::1"), addressKey("2001:db8:1:2::1"));
  assert.equal(addressKey("::1"), "::/64");
  assert.equal(addressKey("not-an-address"), "not-an-address");
});
