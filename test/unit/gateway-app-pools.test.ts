// The gateway app's side of the per-user app pools (red team 1, F9): the upstream is told whose
// request it is (forward and upgrade), and a full set of pools answers 503 with Retry-After (not
// 502, which says the app is down) and gives the user's place back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AppPoolsFull } from "../../src/adapters/http/app-pools.js";
import { appRequest, testApp } from "../helpers/gateway-app.js";

test("each request to the app carries its user, so upstream.ts can keep one pool of app connections per user", async () => {
  const t = testApp();
  const alice = t.signIn("alice").cookie;
  const bob = t.signIn("bob").cookie;
  await appRequest(t.app, "/a", { headers: { cookie: alice } });
  await appRequest(t.app, "/b", { headers: { cookie: bob } });
  assert.deepEqual(
    t.upstream.seen.map((s) => [s.req.user, s.req.target]),
    [
      ["alice", "/a"],
      ["bob", "/b"],
    ],
  );
});

test("every pool busy (AppPoolsFull): 503 with Retry-After, logged, and the user's place at the app is given back", async () => {
  const t = testApp({}, { limits: { appRequestsPerUser: 1 } });
  const alice = t.signIn("alice").cookie;
  t.upstream.reply = () => new AppPoolsFull(1024);
  const full = await appRequest(t.app, "/x", { headers: { cookie: alice } });
  assert.equal(full.status, 503);
  assert.match(full.text, /too many users' requests .*try again in a moment/i);
  assert.equal(full.header("retry-after"), "1");
  assert.ok(t.logs.some((e) => e.event === "upstream" && e.result === "pools-full" && e.user === "alice"));
  assert.equal(t.app.metrics.upstream_errors, 0, "not counted as the app failing");
  t.upstream.reply = () => ({ status: 200, headers: [], body: "fine" });
  const next = await appRequest(t.app, "/y", { headers: { cookie: alice } });
  assert.equal(next.status, 200, "alice's one place was given back");
});
