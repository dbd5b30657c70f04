// The README's production setup with Caddy, run verbatim: the Caddyfile is taken from the README
// (only the site address and the two ports are replaced, and a global block keeps this Caddy on
// loopback, without its admin API, automatic HTTPS or the machine's storage). Anonymous requests
// are sent to the login page, a real sign-in reaches the app as Remote-User, identity headers a
// client forges (also the underscore spellings a CGI/WSGI app reads as REMOTE_USER) never reach
// the app, with or without a session (nor does a Remote-User named in Connection take the user
// away), a WebSocket opens through it, and logout ends it. Each line of the README's Caddyfile that
// deletes or sets a header is needed: without any one of them this test fails.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { cookieHeader, cookiesFrom, http, loginForm, startGateway, startUpstream, upgradeEcho } from "../helpers/gateway.js";
import { assertAppCookies, cookieCases, FORGED, leakedForged, rawGet } from "../helpers/forward-auth.js";
import { ROOT, enrolledUser, oathTotp, systemReady, tempDir } from "../helpers/system.js";

/** The README's Caddyfile: the one ```caddyfile block of the production setup. */
function readmeCaddyfile(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/^```caddyfile\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.equal(blocks.length, 1, "the README has one Caddyfile");
  return blocks[0]!;
}

/** Replace `from` (which must occur) everywhere in `text`. */
function swap(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `the README's Caddyfile contains ${from}`);
  return text.split(from).join(to);
}

describe("gateway behind Caddy forward_auth (the README's Caddyfile)", () => {
  test("anonymous -> login page; a real sign-in -> the app sees Remote-User; forged identity headers never reach the app; logout ends it", async (t) => {
    if (!systemReady(t, ["oathtool", "caddy"])) return;
    const dir = tempDir(t);
    const upstream = await startUpstream();
    t.after(() => upstream.close());
    const { user, secret } = enrolledUser(t);
    const caddyPort = 42000 + Math.floor(Math.random() * 10000);
    const base = `http://127.0.0.1:${caddyPort}`;
    // The README's production setup: Caddy on this host is the trusted proxy, forward_auth: redirect.
    const gw = await startGateway(dir, { public_url: base, allowed_hosts: [`127.0.0.1:${caddyPort}`], trusted_proxies: ["127.0.0.1"], forward_auth: "redirect" });
    t.after(() => gw.stop());

    let site = readmeCaddyfile();
    site = swap(site, "rstudio.example.com {", `${base} {\n\tbind 127.0.0.1`);
    site = swap(site, "127.0.0.1:9091", `127.0.0.1:${gw.port}`);
    site = swap(site, "127.0.0.1:8787", `127.0.0.1:${upstream.port}`);
    const home = join(dir, "caddy-home");
    mkdirSync(home, { recursive: true });
    const caddyfile = join(dir, "Caddyfile");
    writeFileSync(caddyfile, `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${join(home, "data")}\n}\n${site}`);
    const caddy = spawn("/usr/bin/caddy", ["run", "--config", caddyfile, "--adapter", "caddyfile"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: "/usr/bin:/bin", HOME: home, XDG_DATA_HOME: join(home, "data"), XDG_CONFIG_HOME: join(home, "config") },
    });
    let caddyLog = "";
    caddy.stderr.on("data", (d: Buffer) => (caddyLog += d.toString()));
    t.after(async () => {
      if (caddy.exitCode !== null || caddy.signalCode !== null) return;
      const exited = once(caddy, "exit");
      caddy.kill("SIGTERM");
      await exited;
    });
    for (let i = 0; i < 100; i++) {
      try {
        if (/name="csrf"/.test((await http(base, "GET", "/_otpgate/login")).body)) break;
      } catch {
        // not listening yet
      }
      assert.equal(caddy.exitCode, null, `caddy exited: ${caddyLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const viaCaddy = { ...gw, base };

    // Anonymous, with and without forged identity headers: the login page, the app never asked.
    for (const lines of [[], FORGED, [...FORGED, ["Cookie", "otpgate_session=forged"]]] as [string, string][][]) {
      const anon = await rawGet(caddyPort, "/app/page?x=1", lines);
      assert.equal(anon.status, 302, JSON.stringify(lines));
      assert.equal(anon.location, `${base}/_otpgate/login?rd=${encodeURIComponent(`${base}/app/page?x=1`)}`);
    }
    assert.equal(upstream.seen.length, 0, "nothing reached the app without a session");

    // A real sign-in through Caddy; a forged X-Forwarded-For does not choose the address it is counted under.
    const f = await loginForm(viaCaddy, `${base}/app/page?x=1`);
    const ok = await http(
      base,
      "POST",
      "/_otpgate/login",
      { cookie: cookieHeader(f.cookies), "x-forwarded-for": "6.6.6.6" },
      new URLSearchParams({ csrf: f.csrf, rd: `${base}/app/page?x=1`, user: user.name, code: oathTotp(secret) }).toString(),
    );
    assert.equal(ok.status, 303, ok.body);
    assert.equal(ok.headers.location, `${base}/app/page?x=1`);
    assert.match(await gw.waitForLog(/"event":"login","result":"accepted"/), /"ip":"127\.0\.0\.1"/, "the client's address is Caddy's X-Forwarded-For, not the client's own");
    const session = cookiesFrom(ok).otpgate_session!;
    const page = await http(base, "GET", "/app/page?x=1", { cookie: `otpgate_session=${session}` });
    assert.equal(page.status, 200);
    assert.equal(page.body, `upstream page for ${user.name}\n`);
    assert.equal(upstream.seen.at(-1)!.headers["remote-user"], user.name);

    // Signed in, with every forged identity header: the app sees the gateway's answer and nothing else.
    const forged = await rawGet(caddyPort, "/app/page?x=2", [["Cookie", `otpgate_session=${session}`], ...FORGED]);
    assert.equal(forged.status, 200);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.url, "/app/page?x=2");
    assert.equal(seen.headers["remote-user"], user.name);
    assert.deepEqual(leakedForged(seen.headers), [], "no forged identity header reached the app");
    assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1", "Caddy's own X-Forwarded-For");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    assert.equal(seen.headers["x-forwarded-host"], `127.0.0.1:${caddyPort}`);

    // A client that names Remote-User in Connection (a hop-by-hop header, which Caddy removes before
    // it proxies) does not leave the app with a signed-in request without its user.
    const hop = await rawGet(caddyPort, "/app/page?x=3", [["Cookie", `otpgate_session=${session}`], ["Connection", "keep-alive, Remote-User"], ...FORGED]);
    assert.equal(hop.status, 200);
    assert.equal(upstream.seen.at(-1)!.url, "/app/page?x=3");
    assert.equal(upstream.seen.at(-1)!.headers["remote-user"], user.name, "Remote-User named in Connection");
    assert.deepEqual(leakedForged(upstream.seen.at(-1)!.headers), []);

    // The gateway's cookies never reach the app, wherever they stand; the app's own cookies do.
    assertAppCookies(seen.headers, undefined, "session only");
    for (const [i, c] of cookieCases(session).entries()) {
      const r = await rawGet(caddyPort, `/app/cookies?case=${i}`, [...c.lines, ["X-RStudio-Username", "forged-admin"]]);
      assert.equal(r.status, 200, JSON.stringify(c.lines));
      const s = upstream.seen.at(-1)!;
      assert.equal(s.url, `/app/cookies?case=${i}`);
      assert.equal(s.headers["remote-user"], user.name);
      assert.deepEqual(leakedForged(s.headers), []);
      assertAppCookies(s.headers, c.app, JSON.stringify(c.lines), c.lines.length === 1);
    }

    // RStudio needs WebSockets: a signed-in upgrade passes Caddy's forward_auth and reaches the app with its user.
    const ws = await upgradeEcho(caddyPort, `a=1; otpgate_session=${session}`);
    assert.equal(ws.status, "HTTP/1.1 101 Switching Protocols");
    assert.equal(ws.echo, "ping through the tunnel");
    assert.equal(upstream.seen.at(-1)!.method, "UPGRADE");
    assert.equal(upstream.seen.at(-1)!.headers["remote-user"], user.name);
    assertAppCookies(upstream.seen.at(-1)!.headers, "a=1", "WebSocket");
    assert.match((await upgradeEcho(caddyPort, "otpgate_session=forged")).status, /^HTTP\/1\.1 302 /);

    // Logout ends the session: the old cookie goes back to the login page, the app is not asked.
    const before = upstream.seen.length;
    const out = await loginForm(viaCaddy);
    const logout = await http(base, "POST", "/_otpgate/logout", { cookie: cookieHeader({ ...out.cookies, otpgate_session: session }) }, new URLSearchParams({ csrf: out.csrf }).toString());
    assert.equal(logout.status, 303);
    for (const lines of [[], FORGED]) {
      const after = await rawGet(caddyPort, "/app/page", [["Cookie", `otpgate_session=${session}`], ...lines]);
      assert.equal(after.status, 302, "the logged-out cookie no longer opens the app");
      assert.match(after.location, /\/_otpgate\/login\?rd=/);
    }
    assert.equal(upstream.seen.length, before, "the app saw nothing after logout");
  });
});
