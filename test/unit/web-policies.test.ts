// The gateway's security policies (issue 5): open redirects, brute-force regulation, session
// timeouts (sealed cookies and CSRF tokens: keyring.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_SESSION_POLICY, Regulator, checkSession, newSession, safeReturnUrl } from "../../src/core/web/index.js";

const policy = { allowedHosts: ["app.example.com", "rstudio.example.com:8443"], fallback: "/" };

test("return URLs: local paths and allowed hosts pass; every open-redirect trick falls back", () => {
  assert.equal(safeReturnUrl("/dashboard?x=1#y", policy), "/dashboard?x=1#y");
  assert.equal(safeReturnUrl("https://app.example.com/a", policy), "https://app.example.com/a");
  assert.equal(safeReturnUrl("https://APP.example.com./a", policy), "https://app.example.com./a");
  assert.equal(safeReturnUrl("https://rstudio.example.com:8443/", policy), "https://rstudio.example.com:8443/");
  const evil = [
    "//evil.com",
    "///evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "https:evil.com",
    "https:/evil.com",
    "https://evil.com",
    "https://app.example.com.evil.com/",
    "https://evil.com#@app.example.com",
    "https://app.example.com@evil.com/",
    "javascript:alert(1)",
    "data:text/html,x",
    "%2F%2Fevil.com",
    "/%2F%2Fevil.com",
    "/%252F%252Fevil.com",
    "/%5Cevil.com",
    "/\tevil",
    "/a\r\nSet-Cookie:x=1",
    "ftp://app.example.com/",
    "https://rstudio.example.com/",
    "",
    "x".repeat(3000),
  ];
  for (const url of evil) assert.equal(safeReturnUrl(url, policy), "/", JSON.stringify(url));
  assert.equal(safeReturnUrl(null, policy), "/");
});

test("regulation: more than N failures within T bans the (user, address) pair and the address; bans are per key", () => {
  const r = new Regulator({ maxRetries: 3, findTimeMs: 60_000, banTimeMs: 300_000, userDelayMaxMs: 10_000, maxEntries: 1000 });
  const attempt = { subject: "user:alice", address: "203.0.113.9" };
  for (let i = 0; i < 3; i++) assert.deepEqual(r.fail(attempt, 1000 + i), { banned: [] });
  assert.equal(r.admit(attempt, 2000).kind, "allowed");
  assert.deepEqual(r.fail(attempt, 2000), { banned: ["pair", "address"] }, "the 4th failure within a minute bans both");
  assert.equal(r.admit(attempt, 2000 + 299_999).kind, "banned");
  assert.equal(r.admit(attempt, 2000 + 300_000).kind, "allowed", "the ban ends");
  assert.equal(r.admit({ subject: "user:alice", address: "198.51.100.1" }, 2000).kind, "allowed", "another address is not banned");
  const slow = new Regulator({ maxRetries: 3, findTimeMs: 60_000, banTimeMs: 300_000, userDelayMaxMs: 10_000, maxEntries: 1000 });
  for (let i = 0; i < 10; i++) slow.fail({ subject: "user:bob", address: "192.0.2.1" }, i * 61_000);
  assert.equal(slow.admit({ subject: "user:bob", address: "192.0.2.1" }, 10 * 61_000).kind, "allowed", "failures spread beyond the find time never ban");
  const carol = { subject: "user:carol", address: "192.0.2.2" };
  slow.fail(carol, 0);
  slow.succeed(carol);
  for (let i = 0; i < 3; i++) slow.fail(carol, 1 + i);
  assert.deepEqual(slow.admit(carol, 5), { kind: "banned", key: "address", retryAfterMs: 299_998 }, "a success clears the user's failures, not the address's");
  assert.equal(slow.admit({ subject: "user:carol", address: "192.0.2.3" }, 5).kind, "allowed");
});

test("sessions: idle and absolute timeouts; activity extends only the idle one", () => {
  const s = newSession("sid1", "alice", 0);
  const p = { idleMs: 1000, absoluteMs: 5000 };
  assert.equal(checkSession(s, 999, p).valid, true);
  assert.deepEqual(checkSession(s, 1000, p), { valid: false, reason: "idle" });
  let cur = s;
  for (let t = 900; t < 5000; t += 900) {
    const c = checkSession(cur, t, p);
    assert.equal(c.valid, true, `at ${t}`);
    if (c.valid) cur = c.session;
  }
  assert.deepEqual(checkSession(cur, 5000, p), { valid: false, reason: "expired" });
  assert.deepEqual(checkSession(newSession("x", "a", 10 * 60_000), 0, DEFAULT_SESSION_POLICY), { valid: false, reason: "future" });
});
