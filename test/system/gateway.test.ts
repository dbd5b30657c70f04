// otpgate gateway with real HTTP: login flow, proxying (with upgrades), forward-auth, and the
// security properties the issue lists (open redirects, CSRF, tampered cookies, fixation, brute
// force, oversized bodies, traversal) — each refused with the upstream never reached.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import type { TLSSocket } from "node:tls";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { cookieHeader, cookiesFrom, http, login, loginForm, startGateway, startUpstream, upgradeEcho } from "../helpers/gateway.js";
import { assertAppCookies, cookieCases, FORGED, leakedForged, rawGet } from "../helpers/forward-auth.js";
import { ROOT, enrolledUser, oathTotp, runCli, systemReady, tempDir } from "../helpers/system.js";

async function rig(t: TestContext, extra: Record<string, unknown> = {}) {
  const dir = tempDir(t);
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const gw = await startGateway(dir, { public_url: "http://app.test", upstream: `http://127.0.0.1:${upstream.port}`, allowed_hosts: ["app.test"], ...extra });
  t.after(() => gw.stop());
  const { user, secret } = enrolledUser(t);
  return { dir, upstream, gw, user, secret };
}

/** The README's nginx configuration (its one ```nginx block), with only the address and the ports changed. */
function readmeNginx(port: number, gatewayPort: number, appPort: number): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/^```nginx\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.equal(blocks.length, 1, "the README has one nginx block");
  const swap = (text: string, from: string, to: string) => {
    assert.ok(text.includes(from), `the README's nginx block contains ${from}`);
    return text.split(from).join(to);
  };
  let conf = blocks[0]!;
  conf = swap(conf, "listen 443 ssl;", `listen 127.0.0.1:${port};`);
  conf = conf.replace(/^\s*ssl_certificate(_key)? [^;]*;\s*$/gm, "");
  conf = swap(conf, "127.0.0.1:9091", `127.0.0.1:${gatewayPort}`);
  conf = swap(conf, "127.0.0.1:8787", `127.0.0.1:${appPort}`);
  return conf;
}

describe("otpgate gateway", () => {
  test("protected URL -> login page -> user + code -> the app, with Remote-User; replay refused; logout ends the session", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { upstream, gw, user, secret } = await rig(t);
    const anon = await http(gw.base, "GET", "/reports?x=1");
    assert.equal(anon.status, 302);
    assert.equal(anon.headers.location, "/_otpgate/login?rd=%2Freports%3Fx%3D1");
    const f = await loginForm(gw, "/reports?x=1");
    assert.equal(f.page.status, 200);
    assert.match(f.page.headers["content-security-policy"] as string, /default-src 'none'/);
    assert.equal(f.page.headers["x-frame-options"], "DENY");
    assert.match(f.page.body, /<label for="code">One-time code<\/label>/);
    const code = oathTotp(secret);
    const ok = await login(gw, user.name, code, "/reports?x=1");
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, "/reports?x=1");
    const session = cookiesFrom(ok).otpgate_session!;
    assert.match((ok.headers["set-cookie"] as string[]).join(), /otpgate_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax/);
    const page = await http(gw.base, "GET", "/reports?x=1", { cookie: `otpgate_session=${session}`, "remote-user": "root" });
    assert.equal(page.status, 200);
    assert.equal(page.body, `upstream page for ${user.name}\n`);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.headers["remote-user"], user.name, "the client's own Remote-User header is replaced");
    assert.equal(seen.headers.cookie, undefined, "the session cookie is not passed on");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    const echo = await upgradeEcho(gw.port, `otpgate_session=${session}`);
    assert.equal(echo.status, "HTTP/1.1 101 Switching Protocols");
    assert.equal(echo.echo, "ping through the tunnel");
    assert.equal((await upgradeEcho(gw.port, "otpgate_session=forged")).status, "HTTP/1.1 401 Unauthorized");

    const replay = await login(gw, user.name, code);
    assert.equal(replay.status, 401);
    assert.match(replay.body, /Wrong user name or code/);
    const out = await loginForm(gw);
    const logout = await http(gw.base, "POST", "/_otpgate/logout", { cookie: cookieHeader({ ...out.cookies, otpgate_session: session }) }, new URLSearchParams({ csrf: out.csrf }).toString());
    assert.equal(logout.status, 303);
    assert.equal(logout.headers.location, "/_otpgate/login");
    assert.equal((await http(gw.base, "GET", "/reports", { cookie: `otpgate_session=${session}` })).status, 302, "the old cookie no longer works");
    await gw.waitForLog(/"event":"logout"/);
    const logs = gw.logs().map((l) => JSON.parse(l) as Record<string, string>);
    assert.ok(logs.some((l) => l.event === "login" && l.result === "accepted" && l.user === user.name));
    assert.ok(logs.some((l) => l.event === "login" && l.result === "rejected" && l.reason === "replay"));
    assert.doesNotMatch(gw.logs().join("\n"), new RegExp(code), "never a code in the log");
    const metrics = await http(gw.base, "GET", "/_otpgate/metrics");
    assert.match(metrics.body, /otpgate_logins_ok_total 1/);
    assert.equal((await http(gw.base, "GET", "/healthz")).body, "ok\n");
  });

  test("security: open redirects, CSRF, tampered cookies, fixation, brute force, oversized bodies, traversal; upstream never reached", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { upstream, gw, user, secret } = await rig(t, { regulation: { max_retries: 3, find_time: "1m", ban_time: "5m" } });
    for (const rd of ["//evil.test/x", "https:evil.test", "https://evil.test/", "/%2F%2Fevil.test", "/\\evil.test", "javascript:alert(1)"]) {
      const page = await loginForm(gw, rd);
      assert.match(page.page.body, /name="rd" value="\/"/, `rd ${rd} is replaced on the form`);
    }
    const f = await loginForm(gw);
    const noCsrf = await http(gw.base, "POST", "/_otpgate/login", { cookie: cookieHeader(f.cookies) }, new URLSearchParams({ rd: "/", user: user.name, code: oathTotp(secret) }).toString());
    assert.equal(noCsrf.status, 403);
    const otherCsrf = await http(gw.base, "POST", "/_otpgate/login", {}, new URLSearchParams({ csrf: f.csrf, rd: "/", user: user.name, code: oathTotp(secret) }).toString());
    assert.equal(otherCsrf.status, 403, "a token without its cookie is refused");
    const tampered = await http(gw.base, "GET", "/", { cookie: "otpgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" });
    assert.equal(tampered.status, 302);
    const big = await http(gw.base, "POST", "/_otpgate/login", { cookie: cookieHeader(f.cookies) }, "user=" + "a".repeat(10_000));
    assert.equal(big.status, 413);
    assert.equal((await http(gw.base, "GET", "/_otpgate/../secret")).status, 302);
    assert.equal((await http(gw.base, "POST", "/secret", {}, "x=1")).status, 401);

    const fixed = "fixation-attempt";
    const f2 = await loginForm(gw);
    const ok = await http(
      gw.base,
      "POST",
      "/_otpgate/login",
      { cookie: cookieHeader({ ...f2.cookies, otpgate_session: fixed }) },
      new URLSearchParams({ csrf: f2.csrf, rd: "https://evil.test/", user: user.name, code: oathTotp(secret) }).toString(),
    );
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, "/", "an open redirect in the POST is refused too");
    assert.notEqual(cookiesFrom(ok).otpgate_session, fixed, "a new session at login");
    assert.equal(upstream.seen.length, 0, "nothing reached the upstream");

    for (let i = 0; i < 4; i++) assert.equal((await login(gw, user.name, String(100000 + i))).status, 401);
    const banned = await login(gw, user.name, oathTotp(secret, 1));
    assert.equal(banned.status, 401, "banned: even the right code is refused");
    assert.match(banned.body, /Wrong user name or code/, "with the same message");
    await gw.waitForLog(/"reason":"banned"/);
    assert.equal(upstream.seen.length, 0);
  });

  test("forward-auth: 401 or a redirect with the return URL, 200 with Remote-User when signed in", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const dir = tempDir(t);
    const { user, secret } = enrolledUser(t);
    const status = await startGateway(dir, { public_url: "https://app.test", allowed_hosts: ["app.test"] });
    t.after(() => status.stop());
    assert.equal((await http(status.base, "GET", "/_otpgate/auth")).status, 401);
    const ok = await login(status, user.name, oathTotp(secret));
    const session = cookiesFrom(ok)["__Host-otpgate_session"]!;
    assert.match((ok.headers["set-cookie"] as string[]).join(), /Secure/, "Secure cookies behind an https public URL");
    assert.equal(cookiesFrom(ok).otpgate_session, undefined, "__Host- prefix behind https");
    assert.equal((await http(status.base, "GET", "/_otpgate/auth", { cookie: `otpgate_session=${session}` })).status, 401, "the plain name is not read behind https (a tossed cookie)");
    const allowed = await http(status.base, "GET", "/_otpgate/auth", { cookie: `__Host-otpgate_session=${session}` });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers["remote-user"], user.name);
    const dir2 = tempDir(t);
    const redirect = await startGateway(dir2, { public_url: "https://auth.app.test", allowed_hosts: ["app.test", "auth.app.test"], forward_auth: "redirect" });
    t.after(() => redirect.stop());
    const r = await http(redirect.base, "GET", "/_otpgate/auth", { "x-forwarded-proto": "https", "x-forwarded-host": "app.test", "x-forwarded-uri": "/notebook/1" });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://auth.app.test/_otpgate/login?rd=https%3A%2F%2Fapp.test%2Fnotebook%2F1");
    const evil = await http(redirect.base, "GET", "/_otpgate/auth", { "x-forwarded-proto": "https", "x-forwarded-host": "evil.test", "x-forwarded-uri": "/" });
    assert.equal(evil.headers.location, "https://auth.app.test/_otpgate/login?rd=%2F");
  });

  test("--check-config reports every problem with its path, and exit 2", (t) => {
    if (!systemReady(t, [])) return;
    const dir = tempDir(t);
    let n = 0;
    const check = (yaml: string) => {
      const path = join(dir, `c${n++}.yaml`);
      writeFileSync(path, yaml);
      return { path, ...runCli(["gateway", "--config", path, "--check-config"]) };
    };
    const good = check("public_url: https://app.test\nupstream: http://127.0.0.1:8787\n");
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /valid \(listen 127\.0\.0\.1:9091, proxy to http:\/\/127\.0\.0\.1:8787; X-Forwarded-For ignored \(no trusted_proxies\)\)/);
    const proxied = check("public_url: https://app.test\ntrusted_proxies: [127.0.0.1, 10.0.0.0/8]\nmetrics_listen: 127.0.0.1:9092\n");
    assert.equal(proxied.status, 0, proxied.stderr);
    assert.match(proxied.stdout, /X-Forwarded-For believed from 127\.0\.0\.1, 10\.0\.0\.0\/8; metrics on 127\.0\.0\.1:9092/);
    const bad: [string, RegExp][] = [
      ["public_url: https://app.test\nlisten: everywhere\n", /^ {2}listen: must be HOST:PORT such as 127\.0\.0\.1:9091 or \[::1\]:9091, not "everywhere"$/m],
      ["upstream: http://x\n", /^ {2}public_url: is required/m],
      ["public_url: https://app.test\nsession: {idle: soon}\n", /^ {2}session\.idle: must be a duration: a whole number and a unit \(ms, s, m, h or d\) such as 30m, not "soon"$/m],
      ["public_url: https://app.test\nforward_auth: maybe\n", /^ {2}forward_auth: must be status \(nginx auth_request: 200 or 401\) or redirect/m],
      ["public_url: https://app.test\nupsteam: http://x\n", /^ {2}upsteam: unknown key \(did you mean upstream\?\)$/m],
      ["public_url: https://app.test\nproxy_engine: fast\n", /^ {2}proxy_engine: remove this line/m],
      ["public_url: [unclosed\n", /^ {2}line 2, column 1: not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a \]$/m],
    ];
    for (const [yaml, message] of bad) {
      const r = check(yaml);
      assert.equal(r.status, 2, yaml);
      assert.equal(r.stdout, "", yaml);
      assert.match(r.stderr, new RegExp(`^${r.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid, 1 problem:$`, "m"), yaml);
      assert.match(r.stderr, message, yaml);
      assert.doesNotMatch(r.stderr, /internal error/, yaml);
    }
    const many = check("public_url: ftp://x\nlisten: nope\nsession: {idel: 1m}\nregulation: {max_retries: 0}\ntrusted_proxies: [proxy.local]\n");
    assert.equal(many.status, 2);
    assert.deepEqual(
      many.stderr
        .trim()
        .split("\n")
        .slice(1)
        .map((l) => l.trim().split(":")[0]),
      ["public_url", "listen", "session.idel", "regulation.max_retries", "trusted_proxies[0]"],
    );
    // Without --check-config the same problems stop the start, reported (not as an internal error), exit 2:
    const start = runCli(["gateway", "--config", many.path]);
    assert.equal(start.status, 2);
    assert.match(start.stderr, /has 5 problems:\n {2}public_url: /);
    assert.doesNotMatch(start.stderr, /internal error/);
  });
});

describe("gateway behind nginx auth_request (the README's nginx configuration)", () => {
  test("anonymous -> login; signed in -> the app sees Remote-User and none of the forged headers or the gateway's cookies; WebSocket; logout", async (t) => {
    if (!systemReady(t, ["oathtool", "nginx"])) return;
    const dir = tempDir(t);
    const upstream = await startUpstream();
    t.after(() => upstream.close());
    const { user, secret } = enrolledUser(t);
    const nginxPort = 42000 + Math.floor(Math.random() * 10000);
    const base = `http://127.0.0.1:${nginxPort}`;
    // The README's production setup: nginx on this host is the trusted proxy.
    const gw = await startGateway(dir, { public_url: base, allowed_hosts: [`127.0.0.1:${nginxPort}`], trusted_proxies: ["127.0.0.1"] });
    t.after(() => gw.stop());
    const conf = join(dir, "nginx.conf");
    writeFileSync(
      conf,
      `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${readmeNginx(nginxPort, gw.port, upstream.port)}
}
`,
    );
    const checked = spawnSync("/usr/sbin/nginx", ["-t", "-q", "-c", conf, "-p", dir], { encoding: "utf8" });
    assert.equal(checked.status, 0, checked.stderr);
    const { spawn } = await import("node:child_process");
    const nginx = spawn("/usr/sbin/nginx", ["-c", conf, "-p", dir], { stdio: "ignore" });
    t.after(() => nginx.kill("SIGTERM"));
    for (let i = 0; i < 50; i++) {
      try {
        await http(base, "GET", "/_otpgate/login");
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Anonymous, with and without forged headers and a forged session: the login page, the app never asked.
    for (const lines of [[], FORGED, [...FORGED, ["Cookie", "otpgate_session=forged"]]] as [string, string][][]) {
      const anon = await rawGet(nginxPort, "/app/page", lines);
      assert.equal(anon.status, 302, JSON.stringify(lines));
      assert.equal(anon.location, `${base}/_otpgate/login?rd=/app/page`);
    }
    assert.equal(upstream.seen.length, 0);
    const f = await http(base, "GET", "/_otpgate/login?rd=/app/page");
    const csrf = /name="csrf" value="([^"]+)"/.exec(f.body)![1]!;
    const ok = await http(
      base,
      "POST",
      "/_otpgate/login",
      { cookie: cookieHeader(cookiesFrom(f)), "x-forwarded-for": "6.6.6.6" },
      new URLSearchParams({ csrf, rd: "/app/page", user: user.name, code: oathTotp(secret) }).toString(),
    );
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, "/app/page");
    assert.match(await gw.waitForLog(/"event":"login","result":"accepted"/), /"ip":"127\.0\.0\.1"/, "counted under nginx's $remote_addr, not the client's X-Forwarded-For");
    const session = cookiesFrom(ok).otpgate_session!;
    const page = await http(base, "GET", "/app/page", { cookie: `otpgate_session=${session}` });
    assert.equal(page.status, 200);
    assert.equal(upstream.seen.at(-1)!.headers["remote-user"], user.name);

    // Signed in, with every forged header: the app sees the gateway's user and nginx's own forwarding headers.
    const forged = await rawGet(nginxPort, "/app/page?x=2", [["Cookie", `otpgate_session=${session}`], ...FORGED]);
    assert.equal(forged.status, 200);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.url, "/app/page?x=2");
    assert.equal(seen.headers["remote-user"], user.name);
    assert.deepEqual(leakedForged(seen.headers), [], "no forged header reached the app");
    assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1", "nginx's $remote_addr");
    assert.equal(seen.headers["x-real-ip"], "127.0.0.1");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    assert.equal(seen.headers["x-forwarded-host"], "127.0.0.1");
    assertAppCookies(seen.headers, undefined, "session only");

    // The gateway's cookies never reach the app, wherever they stand; the app's own cookies do.
    for (const [i, c] of cookieCases(session).entries()) {
      const r = await rawGet(nginxPort, `/app/cookies?case=${i}`, [...c.lines, ["X-RStudio-Username", "forged-admin"]]);
      assert.equal(r.status, 200, JSON.stringify(c.lines));
      const s = upstream.seen.at(-1)!;
      assert.equal(s.url, `/app/cookies?case=${i}`);
      assert.equal(s.headers["remote-user"], user.name);
      assert.deepEqual(leakedForged(s.headers), []);
      assertAppCookies(s.headers, c.app, JSON.stringify(c.lines));
    }

    // More of the gateway's cookies than the README's maps remove: the app gets no cookies at all (fails closed).
    const many = await rawGet(nginxPort, "/app/cookies?case=many", [
      ["Cookie", `a=1; otpgate_csrf=1; otpgate_session=${session}; otpgate_device=3; __Host-otpgate_csrf=4; b=2; __Host-otpgate_device=5`],
    ]);
    assert.equal(many.status, 200);
    assert.equal(upstream.seen.at(-1)!.url, "/app/cookies?case=many");
    assert.equal(upstream.seen.at(-1)!.headers.cookie, undefined, "five gateway cookies: no Cookie header for the app");

    // RStudio needs WebSockets: a signed-in upgrade reaches the app with its user, without the session cookie.
    const ws = await upgradeEcho(nginxPort, `a=1; otpgate_session=${session}`);
    assert.equal(ws.status, "HTTP/1.1 101 Switching Protocols");
    assert.equal(ws.echo, "ping through the tunnel");
    assert.equal(upstream.seen.at(-1)!.method, "UPGRADE");
    assert.equal(upstream.seen.at(-1)!.headers["remote-user"], user.name);
    assertAppCookies(upstream.seen.at(-1)!.headers, "a=1", "WebSocket");
    assert.match((await upgradeEcho(nginxPort, "otpgate_session=forged")).status, /^HTTP\/1\.1 302 /);

    // Logout ends the session: the old cookie goes back to the login page, the app is not asked.
    const before = upstream.seen.length;
    const out = await http(base, "GET", "/_otpgate/login");
    const outCsrf = /name="csrf" value="([^"]+)"/.exec(out.body)![1]!;
    const logout = await http(base, "POST", "/_otpgate/logout", { cookie: cookieHeader({ ...cookiesFrom(out), otpgate_session: session }) }, new URLSearchParams({ csrf: outCsrf }).toString());
    assert.equal(logout.status, 303);
    const after = await rawGet(nginxPort, "/app/page", [["Cookie", `otpgate_session=${session}`], ...FORGED]);
    assert.equal(after.status, 302, "the logged-out cookie no longer opens the app");
    assert.equal(upstream.seen.length, before, "the app saw nothing after logout");
  });
});

describe("gateway over TLS", () => {
  test("serves HTTPS with the configured certificate: pages and proxying, Secure cookies, HSTS; a key that does not fit is a config error", async (t) => {
    if (!systemReady(t, ["oathtool", "openssl"])) return;
    const dir = tempDir(t);
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    const openssl = (args: string[]) => spawnSync("openssl", args, { encoding: "utf8" });
    const made = openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ]);
    assert.equal(made.status, 0, made.stderr);
    const { user, secret } = enrolledUser(t);
    const upstream = await startUpstream();
    t.after(() => upstream.close());
    const gw = await startGateway(dir, { public_url: "https://127.0.0.1", upstream: `http://127.0.0.1:${upstream.port}`, allowed_hosts: ["127.0.0.1"], tls: { cert, key } });
    t.after(() => gw.stop());
    const ca = readFileSync(cert);
    const tlsGet = (path: string, method = "GET", headers: Record<string, string> = {}, body?: string) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; protocol: string }>((resolve, reject) => {
        const req = httpsRequest(
          { host: "127.0.0.1", port: gw.port, path, method, ca, headers: body === undefined ? headers : { "content-type": "application/x-www-form-urlencoded", ...headers } },
          (res) => {
            let data = "";
            const protocol = (res.socket as TLSSocket).getProtocol() ?? "";
            res.on("data", (d: Buffer) => (data += d.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data, protocol }));
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    const health = await tlsGet("/healthz");
    assert.equal(health.body, "ok\n");
    assert.match(health.protocol, /^TLSv1\.[23]$/);
    await assert.rejects(http(gw.base, "GET", "/healthz"), "plain HTTP on the TLS port gets no answer");
    const form = await tlsGet("/_otpgate/login");
    assert.equal(form.headers["strict-transport-security"], "max-age=31536000");
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    const formCookies = (form.headers["set-cookie"] as string[]).map((c) => c.split(";")[0]).join("; ");
    assert.ok((form.headers["set-cookie"] as string[]).every((c) => /; Secure/.test(c)));
    const ok = await tlsGet("/_otpgate/login", "POST", { cookie: formCookies }, new URLSearchParams({ csrf, rd: "/", user: user.name, code: oathTotp(secret) }).toString());
    assert.equal(ok.status, 303, ok.body);
    assert.match((ok.headers["set-cookie"] as string[]).join(), /__Host-otpgate_session=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Lax/);
    assert.match(
      (form.headers["set-cookie"] as string[]).join(),
      /__Host-otpgate_csrf=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict/,
      "the CSRF cookie cannot be tossed from a sibling domain either",
    );
    const session = (ok.headers["set-cookie"] as string[]).find((c) => c.startsWith("__Host-otpgate_session="))!.split(";")[0]!;
    const app = await tlsGet("/reports", "GET", { cookie: session });
    assert.equal(app.body, `upstream page for ${user.name}\n`, "proxied over TLS");
    assert.equal(upstream.seen.at(-1)?.headers["x-forwarded-proto"], "https");

    const other = join(dir, "other.pem");
    assert.equal(openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other]).status, 0);
    writeFileSync(join(dir, "bad.yaml"), `public_url: https://127.0.0.1\nkeys_file: ${join(dir, "gateway.keys")}\ntls: {cert: ${cert}, key: ${other}}\n`);
    const bad = runCli(["gateway", "--config", join(dir, "bad.yaml"), "--check-config"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /cannot be used together .*check that the key belongs to the certificate/);
    writeFileSync(join(dir, "missing.yaml"), `public_url: https://127.0.0.1\ntls: {cert: ${join(dir, "nope.pem")}, key: ${key}}\n`);
    const missing = runCli(["gateway", "--config", join(dir, "missing.yaml"), "--check-config"]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read the TLS file .*nope\.pem/);
  });
});
