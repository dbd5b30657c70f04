// Doctor's check for what otpgate radius cannot do itself (review 2, F2): an nftables rule that
// lets only root send to the RADIUS port on loopback, and a port no user can bind first.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hasUidRule, radiusFirewallRules, radiusHardeningFindings, radiusUnitPort } from "../../src/admin/radius-hardening.js";

const NFT_OUTPUT = `table inet otpgate {
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\toifname "lo" udp dport 1812 meta skuid != 0 drop
\t}
}
`;

test("the rule otpgate radius --help prints is recognised as nft lists it; other ports, hooks and verdicts are not", () => {
  assert.ok(hasUidRule(NFT_OUTPUT, 1812));
  assert.ok(hasUidRule(radiusFirewallRules(1812), 1812));
  assert.ok(!hasUidRule(NFT_OUTPUT, 1813));
  assert.ok(!hasUidRule(NFT_OUTPUT.replace("drop", "accept"), 1812));
  assert.ok(!hasUidRule(NFT_OUTPUT.replace("hook output", "hook input"), 1812));
  assert.ok(hasUidRule(NFT_OUTPUT.replace("dport 1812", "dport { 1645, 1812 }"), 1812));
  assert.ok(!hasUidRule("", 1812));
});

test("findings: ok with the rule and a privileged port; warnings name the fix without it, or with a port users may bind", () => {
  const ok = radiusHardeningFindings(812, { unprivilegedPortStart: () => 1024, ruleset: () => NFT_OUTPUT.replace("1812", "812") });
  assert.deepEqual(
    ok.map((f) => f.severity),
    ["ok"],
  );
  // 1812, the RADIUS port, is NOT privileged (>= 1024): any user can bind it first.
  const standard = radiusHardeningFindings(1812, { unprivilegedPortStart: () => 1024, ruleset: () => NFT_OUTPUT });
  assert.deepEqual(
    standard.map((f) => f.severity),
    ["warn", "ok"],
  );
  const bare = radiusHardeningFindings(18120, { unprivilegedPortStart: () => 1024, ruleset: () => "" });
  assert.deepEqual(
    bare.map((f) => f.severity),
    ["warn", "warn"],
  );
  assert.match(bare[0]!.message, /can be bound by any local user/);
  assert.match(bare[1]!.fix!, /udp dport 18120 meta skuid != 0 drop/);
  const lowered = radiusHardeningFindings(1812, { unprivilegedPortStart: () => 0, ruleset: () => null });
  assert.match(lowered[0]!.message, /ip_unprivileged_port_start is 0/);
  assert.match(lowered[1]!.message, /cannot read the nftables ruleset/);
});

test("the port comes from the unit's --listen (default 1812); a unit that is not otpgate radius gives none", () => {
  assert.equal(radiusUnitPort('ExecStart="/usr/bin/node" "/usr/lib/otpgate/dist/otpgate.cjs" "radius" "--listen" "127.0.0.1:1645"\n'), 1645);
  assert.equal(radiusUnitPort("ExecStart=/usr/bin/node /x/otpgate.cjs radius --secret-file /etc/otpgate/radius.secret\n"), 1812);
  assert.equal(radiusUnitPort("ExecStart=/usr/bin/sleep 1\n"), null);
});
