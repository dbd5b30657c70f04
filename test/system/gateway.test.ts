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
import { enrolledUser, oathTotp, runCli, systemReady, tempDir } from "../helpers/system.js";

async function rig(t: TestContext, extra: Record<string, unknown> = {}) {
  const dir = tempDir(t);
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const gw = await startGateway(dir, { public_url: "http://app.test", upstream: `http://127.0.0.1:${upstream.port}`, allowed_hosts: ["app.test"], ...extra });
  t.after(() => gw.stop());
  const { user, secret } = enrolledUser(t);
  return { dir, upstream, gw, user, secret };
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

describe("gateway behind nginx auth_request", () => {
  test("anonymous -> redirected to login; after login -> 200 and the upstream sees Remote-User", async (t) => {
    if (!systemReady(t, ["oathtool", "nginx"])) return;
    const dir = tempDir(t);
    const upstream = await startUpstream();
    t.after(() => upstream.close());
    const { user, secret } = enrolledUser(t);
    const nginxPort = 42000 + Math.floor(Math.random() * 10000);
    // The README's production setup: nginx on this host is the trusted proxy.
    const gw = await startGateway(dir, { public_url: `http://127.0.0.1:${nginxPort}`, allowed_hosts: [`127.0.0.1:${nginxPort}`], trusted_proxies: ["127.0.0.1"] });
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
  server {
    listen 127.0.0.1:${nginxPort};
    location = /_otpgate/auth {
      internal;
      proxy_pass http://127.0.0.1:${gw.port};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
    }
    location /_otpgate/ { proxy_pass http://127.0.0.1:${gw.port}; proxy_set_header X-Forwarded-For $remote_addr; }
    location / {
      auth_request /_otpgate/auth;
      auth_request_set $otp_user $upstream_http_remote_user;
      error_page 401 = @login;
      proxy_set_header Remote-User $otp_user;
      proxy_set_header X-Forwarded-User ""; proxy_set_header X-Remote-User "";
      proxy_pass http://127.0.0.1:${upstream.port};
    }
    location @login { return 302 /_otpgate/login?rd=$request_uri; }
  }
}
`,
    );
    const { spawn } = await import("node:child_process");
    const nginx = spawn("/usr/sbin/nginx", ["-c", conf, "-p", dir], { stdio: "ignore" });
    t.after(() => nginx.kill("SIGTERM"));
    const base = `http://127.0.0.1:${nginxPort}`;
    for (let i = 0; i < 50; i++) {
      try {
        await http(base, "GET", "/_otpgate/login");
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const anon = await http(base, "GET", "/app/page");
    assert.equal(anon.status, 302);
    assert.equal(anon.headers.location, `${base}/_otpgate/login?rd=/app/page`);
    assert.equal(upstream.seen.length, 0);
    const f = await http(base, "GET", "/_otpgate/login?rd=/app/page");
    const csrf = /name="csrf" value="([^"]+)"/.exec(f.body)![1]!;
    const ok = await http(
      base,
      "POST",
      "/_otpgate/login",
      { cookie: cookieHeader(cookiesFrom(f)) },
      new URLSearchParams({ csrf, rd: "/app/page", user: user.name, code: oathTotp(secret) }).toString(),
    );
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, "/app/page");
    const page = await http(base, "GET", "/app/page", { cookie: `otpgate_session=${cookiesFrom(ok).otpgate_session}` });
    assert.equal(page.status, 200);
    assert.equal(upstream.seen.at(-1)!.headers["remote-user"], user.name);
    // A signed-in client's own identity headers do not survive the README's nginx configuration.
    const forged = await http(base, "GET", "/app/page", { cookie: `otpgate_session=${cookiesFrom(ok).otpgate_session}`, "remote-user": "root", "x-remote-user": "root", "x-forwarded-user": "root" });
    assert.equal(forged.status, 200);
    const seen = upstream.seen.at(-1)!.headers;
    assert.equal(seen["remote-user"], user.name);
    assert.ok(!seen["x-remote-user"] && !seen["x-forwarded-user"], JSON.stringify(seen));
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
