// The limits added after red team 2 (issue 9, F4): tunnels per user, client connections, app
// connections in use and users' app pools are validated keys with defaults that fit the unit's
// LimitNOFILE=16384.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseGatewayConfig } from "../../src/adapters/http/gateway-config.js";

const BASE = "public_url: https://app.example.com\nupstream: http://127.0.0.1:8787\n";

test("limits: tunnels_per_user, max_connections, app_connections and app_pools default and parse", () => {
  const d = parseGatewayConfig(BASE).limits;
  assert.equal(d.tunnelsPerUser, 32);
  assert.equal(d.maxConnections, 8192);
  assert.equal(d.appConnections, 4096);
  assert.equal(d.appPools, 1024);
  assert.ok(d.maxConnections + d.appConnections < 16384, "client and app sockets in use fit under LimitNOFILE with room to spare");
  const c = parseGatewayConfig(`${BASE}limits: {tunnels_per_user: 4, max_connections: 2000, app_connections: 500, app_pools: 5000}\n`).limits;
  assert.deepEqual([c.tunnelsPerUser, c.maxConnections, c.appConnections, c.appPools], [4, 2000, 500, 5000]);
});

test("limits: out-of-range values are refused with the key and the range", () => {
  for (const [yaml, message] of [
    ["tunnels_per_user: 0", "gw.yaml: limits.tunnels_per_user: must be from 1 to 10000, not 0"],
    ["max_connections: 8", "gw.yaml: limits.max_connections: must be from 16 to 1000000, not 8"],
    ["app_connections: 2000000", "gw.yaml: limits.app_connections: must be from 16 to 1000000, not 2000000"],
    ["app_pools: -1", "gw.yaml: limits.app_pools: must be from 16 to 1000000, not -1"],
  ] as const) {
    assert.throws(
      () => parseGatewayConfig(`${BASE}limits: {${yaml}}\n`, "gw.yaml"),
      (err: Error) => {
        assert.ok(err.message.includes(message), `${err.message} should include ${message}`);
        return true;
      },
    );
  }
});
