// Forward-auth's fast path, with fixed clocks: the session cache (exact cookie -> opened session)
// skips only the unsealing; every check that can change between requests still runs on a hit
// (revocation, "valid after", idle and absolute timeouts, key retirement, the secret's fingerprint).
// The one-cookie reader gives exactly parseCookies' answer, in linear time. The route without the
// URL parser answers as the parsed route does, and answers carry Content-Length: 0.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { createSessionService, type SessionService } from "../../src/adapters/http/sessions.js";
import { openSessionsFile } from "../../src/adapters/http/gateway-entry.js";
import { cookieValue, parseCookies } from "../../src/core/web/cookies.js";
import { Keyring, rotateKeys } from "../../src/platform/keyring.js";
import { systemRandom } from "../../src/platform/random.js";
import { appRequest, testApp } from "../helpers/gateway-app.js";

const T0 = Date.UTC(2026, 11, 2, 3, 0, 0);
const MIN = 60_000;
const policy = { idleMs: 30 * MIN, absoluteMs: 12 * 60 * MIN, recheckMs: MIN };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Harness {
  readonly s: SessionService;
  readonly secrets: Map<string, string>;
  readonly keysFile: string;
  /** How often a cookie was unsealed (Keyring#open for the session purpose). */
  unsealed(): number;
  cookie(user: string, now: number): string;
}

function harness(t: TestContext): Harness {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-fa-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const open = t.mock.method(Keyring.prototype, "open");
  const secrets = new Map([
    ["alice", "SECRETA"],
    ["bob", "SECRETB"],
  ]);
  const keysFile = join(dir, "gateway.keys");
  const s = createSessionService({
    config: { keysFile, sessionsFile: join(dir, "gateway.sessions"), session: policy },
    clock: { nowMs: () => T0 },
    random: systemRandom,
    openSessionsFile,
    log: () => {},
    readSecret: async (user) => secrets.get(user) ?? null,
    watchMs: 20,
  });
  t.after(() => s.close());
  return {
    s,
    secrets,
    keysFile,
    unsealed: () => open.mock.calls.filter((c) => c.arguments[0] === "session").length,
    cookie: (user, now) => s.issue(user, now, s.fingerprint(user, secrets.get(user)!)).cookie,
  };
}

describe("forward-auth: the cache of opened sessions", () => {
  test("a cookie is unsealed once; later requests are cache hits that still refresh activity", (t) => {
    const h = harness(t);
    const c = h.cookie("alice", T0);
    assert.equal(h.s.open(c, T0 + 1000)?.user, "alice");
    assert.equal(h.s.open(c, T0 + 2000)?.user, "alice");
    assert.equal(h.s.open(c, T0 + 20 * MIN)?.user, "alice");
    assert.equal(h.unsealed(), 1, "the second and third requests did not unseal again");
    // Activity at +20 min keeps it alive at +45 min (idle is 30 min), from the cache.
    assert.equal(h.s.open(c, T0 + 45 * MIN)?.lastSeenAt, T0 + 45 * MIN);
    assert.equal(h.unsealed(), 1);
  });

  test("a cached cookie is refused once its session is revoked (logout), and stays refused", (t) => {
    const h = harness(t);
    const c = h.cookie("alice", T0);
    const s = h.s.open(c, T0 + 1000)!;
    h.s.revoke(s, T0 + 2000);
    assert.equal(h.s.open(c, T0 + 3000), null);
    assert.equal(h.s.open(c, T0 + 4000), null);
    assert.equal(h.unsealed(), 1, "refused from the cache: the checks ran on a hit");
  });

  test("a cached cookie is refused after log out everywhere (valid after); a later login of the same user is not", (t) => {
    const h = harness(t);
    const c = h.cookie("alice", T0);
    const other = h.cookie("bob", T0);
    assert.ok(h.s.open(c, T0 + 1000));
    assert.ok(h.s.open(other, T0 + 1000));
    h.s.revokeUser("alice", T0 + 2000);
    assert.equal(h.s.open(c, T0 + 3000), null);
    assert.equal(h.s.open(other, T0 + 3000)?.user, "bob");
    assert.equal(h.s.open(h.cookie("alice", T0 + 4000), T0 + 5000)?.user, "alice");
    assert.equal(h.unsealed(), 3);
  });

  test("a cached cookie is refused when idle and when expired (absolute), whatever the cache holds", (t) => {
    const h = harness(t);
    const idle = h.cookie("alice", T0);
    assert.ok(h.s.open(idle, T0 + 1000));
    assert.equal(h.s.open(idle, T0 + 1000 + policy.idleMs), null, "idle");
    const busy = h.cookie("bob", T0);
    for (let at = T0 + 1000; at < T0 + policy.absoluteMs; at += 20 * MIN) {
      h.secrets.set("bob", "SECRETB"); // unchanged: the background recheck keeps it
      assert.equal(h.s.open(busy, at)?.user, "bob", `active at +${(at - T0) / MIN} min`);
    }
    assert.equal(h.s.open(busy, T0 + policy.absoluteMs), null, "expired");
    assert.equal(h.unsealed(), 2);
  });

  test("a cached cookie sealed with a key that is then retired (by another process) is refused", async (t) => {
    const h = harness(t);
    const before = h.cookie("alice", T0);
    assert.ok(h.s.open(before, T0 + 1000));
    await h.s.flush();
    await rotateKeys(h.keysFile, T0 + 2000, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: policy.absoluteMs });
    await sleep(100);
    const after = h.cookie("alice", T0 + 3000);
    assert.ok(h.s.open(before, T0 + 4000), "the old key still opens");
    await rotateKeys(h.keysFile, T0 + 5000, systemRandom, { rotate: false, retireOld: true, force: true, absoluteMs: policy.absoluteMs });
    await sleep(100);
    assert.equal(h.s.open(before, T0 + 6000), null, "sealed with the retired key");
    assert.equal(h.s.open(after, T0 + 6000)?.user, "alice");
  });

  test("a cached cookie is refused once the user's secret changed (the recheck runs on hits too)", async (t) => {
    const h = harness(t);
    const c = h.cookie("alice", T0);
    assert.ok(h.s.open(c, T0 + 1000));
    h.secrets.set("alice", "NEWSECRET");
    assert.ok(h.s.open(c, T0 + 1000 + policy.recheckMs), "the recheck is due: it runs in the background");
    await h.s.flush();
    assert.equal(h.s.open(c, T0 + 2000 + policy.recheckMs), null, "secret changed");
    assert.equal(h.unsealed(), 1);
  });

  test("a tampered or foreign cookie is never cached as valid", (t) => {
    const h = harness(t);
    const c = h.cookie("alice", T0);
    const tampered = c.slice(0, -2) + (c.endsWith("A") ? "B" : "A") + c.slice(-1);
    assert.equal(h.s.open(tampered, T0 + 1000), null);
    assert.equal(h.s.open(tampered, T0 + 2000), null);
    assert.equal(h.unsealed(), 2, "a refused cookie is unsealed (and refused) every time");
  });
});

describe("forward-auth: the one-cookie reader", () => {
  test("cookieValue gives parseCookies' answer for every name, on tricky and random headers", () => {
    const fixed = [
      "otpgate_session=A",
      "a=1; otpgate_session=B; otpgate_session=C",
      " otpgate_session =D ",
      "=x; otpgate_session",
      ";;otpgate_session=E;;",
      "otpgate_session==F=",
      "x=1",
      "",
      " = ; otpgate_session=G",
      "otpgate_sessionX=1; Xotpgate_session=2",
      "a=b=c; otpgate_session=H",
      "a; b; =; otpgate_session=I",
    ];
    const lists: string[][] = [...fixed.map((h) => [h]), fixed, ["x=1", "otpgate_session=J"], ["otpgate_session=K", "otpgate_session=L"]];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
    const alphabet = ["=", ";", " ", "a", "o", "otpgate_session", "\t", "x"];
    for (let i = 0; i < 2000; i++) {
      const headers: string[] = [];
      for (let k = rnd(3) + 1; k > 0; k--) headers.push(Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]).join(""));
      lists.push(headers);
    }
    for (const values of lists) {
      const all = parseCookies(values);
      for (const name of ["otpgate_session", "a", "x", "o", "", "missing", ...all.keys()]) assert.equal(cookieValue(values, name), all.get(name), `${JSON.stringify(values)} ${name}`);
    }
  });

  test("linear time: a 1 MB header of separators without '=' is read quickly", () => {
    const started = performance.now();
    assert.equal(cookieValue([";".repeat(1 << 20) + "otpgate_session=Z"], "otpgate_session"), "Z");
    assert.equal(cookieValue(["a".repeat(1 << 19) + ";".repeat(1 << 19)], "otpgate_session"), undefined);
    assert.ok(performance.now() - started < 2000, "quadratic scanning would take minutes");
  });
});

describe("forward-auth: the route", () => {
  test("the exact target (no URL parser) and parsed variants give the same decision; Content-Length 0, no body", async () => {
    const { app, signIn } = testApp();
    const { cookie } = signIn("alice");
    for (const target of ["/_otpgate/auth", "/_otpgate/auth?x=1", "/_otpgate/./auth", "/x/../_otpgate/auth"]) {
      const ok = await appRequest(app, target, { headers: { cookie } });
      assert.equal(ok.status, 200, target);
      assert.equal(ok.header("remote-user"), "alice");
      assert.equal(ok.header("content-length"), "0");
      assert.equal(ok.text, "");
      const no = await appRequest(app, target, { headers: { cookie: "otpgate_session=forged" } });
      assert.equal(no.status, 401, target);
      assert.equal(no.header("remote-user"), undefined);
      assert.equal(no.header("content-length"), "0");
    }
    // Near misses are not forward-auth.
    assert.equal((await appRequest(app, "/_otpgate/authx", { headers: { cookie } })).header("remote-user"), undefined);
    assert.equal((await appRequest(app, "/_otpgate/Auth", { headers: { cookie } })).header("remote-user"), undefined);
  });

  test("the exact target still gets the request checks that come before routing", async () => {
    const { app, signIn } = testApp();
    const { cookie } = signIn("alice");
    const r = await appRequest(app, "/_otpgate/auth", {
      method: "POST",
      headers: [
        ["cookie", cookie],
        ["transfer-encoding", "gzip, chunked"],
      ],
      body: "x",
    });
    assert.equal(r.status, 400);
    assert.equal(r.header("connection"), "close");
    assert.equal(r.header("remote-user"), undefined);
  });

  test("a session cookie split over several Cookie headers, or written with spaces, is read as before", async () => {
    const { app, signIn } = testApp();
    const value = signIn("alice").cookie.split("=").slice(1).join("=");
    const split = await appRequest(app, "/_otpgate/auth", {
      headers: [
        ["cookie", "a=1"],
        ["cookie", `b=2; otpgate_session =${value}`],
      ],
    });
    assert.equal(split.header("remote-user"), "alice");
    const first = await appRequest(app, "/_otpgate/auth", {
      headers: [
        ["cookie", "otpgate_session=forged"],
        ["cookie", `otpgate_session=${value}`],
      ],
    });
    assert.equal(first.status, 401, "the first occurrence wins, as everywhere else");
  });
});
