// The gateway's configuration (issue 9, "Config"): strict at every level, every problem reported at
// once with its YAML path, "did you mean" for misspelt keys, ranges with messages that say what to
// write, and the old spellings handled (head_timeout accepted, proxy_engine refused with advice).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/core/errors.js";
import { GatewayConfigError, didYouMean, duration, formatDuration, loadGatewayConfig, parseGatewayConfig, type ConfigProblem } from "../../src/adapters/http/gateway-config.js";

const BASE = "public_url: https://app.example.com\n";

function problems(yaml: string): ConfigProblem[] {
  try {
    parseGatewayConfig(yaml, "gw.yaml");
  } catch (err) {
    assert.ok(err instanceof GatewayConfigError, String(err));
    assert.ok(err instanceof ConfigError, "a ConfigError: the CLI exits 2 with the message");
    assert.equal(err.exitCode, 2);
    return [...err.problems];
  }
  assert.fail(`accepted:\n${yaml}`);
}

/** The one problem a config has. */
function only(yaml: string): ConfigProblem {
  const list = problems(yaml);
  assert.equal(list.length, 1, JSON.stringify(list));
  return list[0]!;
}

test("a minimal config gets every default", () => {
  const c = parseGatewayConfig(BASE);
  assert.deepEqual(c.listen, { host: "127.0.0.1", port: 9091 });
  assert.equal(c.publicUrl.href, "https://app.example.com/");
  assert.equal(c.upstream, null);
  assert.equal(c.pagesPrefix, "/_otpgate");
  assert.deepEqual(c.allowedHosts, ["app.example.com"]);
  assert.equal(c.tls, null);
  assert.equal(c.stateFiles, "~/.google_authenticator");
  assert.equal(c.keysFile, "/var/lib/otpgate/gateway.keys");
  assert.equal(c.sessionsFile, "/var/lib/otpgate/gateway.sessions");
  assert.deepEqual(c.session, { idleMs: 30 * 60_000, absoluteMs: 12 * 3_600_000, recheckMs: 60_000 });
  assert.deepEqual(c.regulation, { maxRetries: 5, findTimeMs: 120_000, banTimeMs: 300_000, userDelayMaxMs: 10_000, maxEntries: 100_000 });
  assert.deepEqual(c.limits, {
    firstByteMs: 10_000,
    headMs: 30_000,
    bodyMs: 30_000,
    keepAliveMs: 300_000,
    connectionsPerAddress: 64,
    maxHeaders: 100,
    appRequestsPerUser: 64,
    appBodyIdleMs: 30_000,
    tunnelsPerUser: 32,
    maxConnections: 8192,
    appConnections: 4096,
    appPools: 1024,
  });
  assert.equal(c.headTimeoutMs, 30_000, "the deprecated alias equals limits.headMs");
  assert.equal(c.forwardAuth, "status");
  assert.equal(c.cookieName, "otpgate_session");
  assert.equal(c.passwordFile, null);
  assert.equal(c.invitesDir, "/var/lib/otpgate/invites");
  assert.equal(c.issuer, hostname() || "otpgate");
  assert.deepEqual(c.trustedProxies, { ranges: [] });
  assert.equal(c.metricsListen, null);
  assert.equal(c.userLookupTimeoutMs, 5_000);
  assert.equal(c.proxyEngine, "node");
});

test("every key is read", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "cert.pem"), "x");
  writeFileSync(join(dir, "key.pem"), "x");
  const c = parseGatewayConfig(`
listen: "[::1]:8443"
public_url: https://APP.example.com:8443
upstream: http://127.0.0.1:8787
pages_prefix: /auth
allowed_hosts: [App.Example.com:8443, rstudio.example.com]
tls: {cert: ${dir}/cert.pem, key: ${dir}/key.pem}
state_files: /var/lib/otpgate/\${USER}
keys_file: /etc/otpgate/gw.keys
sessions_file: /var/lib/otpgate/revoked
session: {idle: 10m, absolute: 8h, recheck: 30s}
regulation: {max_retries: 3, find_time: 1m, ban_time: 15m, user_delay_max: 2s, max_entries: 5000}
limits: {first_byte_timeout: 5s, head_timeout: 20s, body_timeout: 1m, keep_alive_timeout: 75s, connections_per_address: 16, max_headers: 60, app_requests_per_user: 8, app_body_idle_timeout: 10s}
forward_auth: redirect
cookie_name: gw_sid
password_file: /etc/otpgate/passwords
invites_dir: /srv/invites
issuer: Example Corp
trusted_proxies:
  - 127.0.0.1
  - 10.0.0.0/8
  - 2001:db8::/32
metrics_listen: 127.0.0.1:9100
user_lookup_timeout: 2s
`);
  assert.deepEqual(c.listen, { host: "::1", port: 8443 });
  assert.equal(c.publicUrl.host, "app.example.com:8443");
  assert.equal(c.upstream?.origin, "http://127.0.0.1:8787");
  assert.equal(c.pagesPrefix, "/auth");
  assert.deepEqual(c.allowedHosts, ["app.example.com:8443", "rstudio.example.com"]);
  assert.deepEqual(c.tls, { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` });
  assert.equal(c.stateFiles, "/var/lib/otpgate/${USER}");
  assert.equal(c.keysFile, "/etc/otpgate/gw.keys");
  assert.equal(c.sessionsFile, "/var/lib/otpgate/revoked");
  assert.deepEqual(c.session, { idleMs: 600_000, absoluteMs: 8 * 3_600_000, recheckMs: 30_000 });
  assert.deepEqual(c.regulation, { maxRetries: 3, findTimeMs: 60_000, banTimeMs: 900_000, userDelayMaxMs: 2000, maxEntries: 5000 });
  assert.deepEqual(c.limits, {
    firstByteMs: 5000,
    headMs: 20_000,
    bodyMs: 60_000,
    keepAliveMs: 75_000,
    connectionsPerAddress: 16,
    maxHeaders: 60,
    appRequestsPerUser: 8,
    appBodyIdleMs: 10_000,
    tunnelsPerUser: 32,
    maxConnections: 8192,
    appConnections: 4096,
    appPools: 1024,
  });
  assert.equal(c.headTimeoutMs, 20_000);
  assert.equal(c.forwardAuth, "redirect");
  assert.equal(c.cookieName, "gw_sid");
  assert.equal(c.passwordFile, "/etc/otpgate/passwords");
  assert.equal(c.invitesDir, "/srv/invites");
  assert.equal(c.issuer, "Example Corp");
  assert.deepEqual(
    c.trustedProxies.ranges.map((r) => r.text),
    ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"],
  );
  assert.deepEqual(c.metricsListen, { host: "127.0.0.1", port: 9100 });
  assert.equal(c.userLookupTimeoutMs, 2000);
});

test("sessions_file defaults to gateway.sessions next to keys_file", () => {
  assert.equal(parseGatewayConfig(`${BASE}keys_file: /srv/gw/keys\n`).sessionsFile, "/srv/gw/gateway.sessions");
});

test("head_timeout at the top level is the old spelling of limits.head_timeout; both at once is an error", () => {
  const old = parseGatewayConfig(`${BASE}head_timeout: 7s\n`);
  assert.equal(old.limits.headMs, 7000);
  assert.equal(old.headTimeoutMs, 7000);
  assert.deepEqual(only(`${BASE}head_timeout: 7s\nlimits: {head_timeout: 8s}\n`), {
    path: "head_timeout",
    message: "is also set as limits.head_timeout; keep only limits.head_timeout (head_timeout is its old spelling)",
  });
  assert.deepEqual(only(`${BASE}head_timeout: 500ms\n`), { path: "head_timeout", message: "must be from 1s to 5m, not 500ms" });
});

test("proxy_engine is gone: the key is an error that says to delete it", () => {
  for (const value of ["fast", "node"]) {
    const p = only(`${BASE}proxy_engine: ${value}\n`);
    assert.equal(p.path, "proxy_engine");
    assert.match(p.message, /^remove this line: the gateway now has one proxy engine \(undici\)/);
  }
});

test("each wrong value is reported with its path and what to write", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "key.pem"), "x");
  const cases: [yaml: string, path: string, message: RegExp][] = [
    ["upstream: http://x\n", "public_url", /^is required: the URL users reach the gateway at, such as https:\/\/app\.example\.com$/],
    ["public_url: app.example.com\n", "public_url", /^must be an absolute URL such as https:\/\/app\.example\.com, not "app\.example\.com"$/],
    ["public_url: ftp://app.example.com\n", "public_url", /^must be an http:\/\/ or https:\/\/ URL/],
    ["public_url: https://u:p@app.example.com\n", "public_url", /^must not contain a user name or password$/],
    ["public_url: 42\n", "public_url", /^must be a URL such as https:\/\/app\.example\.com, not 42$/],
    ["public_url:\n", "public_url", /^must be a URL such as .*, not empty$/],
    [`${BASE}listen: everywhere\n`, "listen", /^must be HOST:PORT such as 127\.0\.0\.1:9091 or \[::1\]:9091, not "everywhere"$/],
    [`${BASE}listen: 9091\n`, "listen", /^must be HOST:PORT such as .*, not 9091$/],
    [`${BASE}listen: 127.0.0.1:0\n`, "listen", /^the port must be from 1 to 65535, not 0$/],
    [`${BASE}listen: 127.0.0.1:70000\n`, "listen", /^the port must be from 1 to 65535, not 70000$/],
    [`${BASE}listen: example.com:80\n`, "listen", /^must be HOST:PORT with an IP address \(IPv6 in brackets\) or localhost/],
    [`${BASE}listen: "::1:80"\n`, "listen", /IPv6 in brackets/],
    [`${BASE}listen: 256.0.0.1:80\n`, "listen", /with an IP address/],
    [`${BASE}upstream: https://127.0.0.1:8787\n`, "upstream", /^must be an http:\/\/ URL/],
    [`${BASE}upstream: http://127.0.0.1:8787/app\n`, "upstream", /^only the scheme, host and port are used; write http:\/\/127\.0\.0\.1:8787/],
    [`${BASE}upstream: 127.0.0.1:8787\n`, "upstream", /^must be an absolute URL such as http:\/\/127\.0\.0\.1:8787, not "127\.0\.0\.1:8787"$/],
    [`${BASE}upstream: localhost:8787\n`, "upstream", /^must be an http:\/\/ or https:\/\/ URL such as http:\/\/127\.0\.0\.1:8787, not "localhost:8787"$/],
    [`${BASE}pages_prefix: /a/b\n`, "pages_prefix", /^must be one path segment such as \/_otpgate, not "\/a\/b"$/],
    [`${BASE}pages_prefix: /..\n`, "pages_prefix", /one path segment/],
    [`${BASE}allowed_hosts: app.example.com\n`, "allowed_hosts", /^must be a list such as \[app\.example\.com\]/],
    [`${BASE}allowed_hosts: [https://app.example.com]\n`, "allowed_hosts[0]", /^must be a host name such as app\.example\.com or app\.example\.com:8443 \(no scheme, path or wildcard\)/],
    [`${BASE}allowed_hosts: [ok.example.com, "*.example.com"]\n`, "allowed_hosts[1]", /no scheme, path or wildcard/],
    [`${BASE}allowed_hosts: [ok.example.com, 7]\n`, "allowed_hosts[1]", /^must be a host name such as app\.example\.com, not 7$/],
    [`${BASE}tls: {cert: ${dir}/none.pem, key: ${dir}/key.pem}\n`, "tls.cert", /^cannot read the TLS file .*none\.pem \(ENOENT\); give the certificate chain \(PEM\)$/],
    [`${BASE}tls: yes\n`, "tls", /^must be a mapping \(key: value lines indented under it\)$/],
    [`${BASE}tls: {cert: ${dir}/key.pem}\n`, "tls.key", /^is required: the private key \(PEM file\)$/],
    [`${BASE}tls: {cert: key.pem, key: ${dir}/key.pem}\n`, "tls.cert", /^must be an absolute path/],
    [`${BASE}state_files: /etc/shared-secret\n`, "state_files", /^must contain ~, \$\{HOME\} or \$\{USER\} so that each user has their own file/],
    [`${BASE}state_files: secrets/\${USER}\n`, "state_files", /is not absolute; use an absolute path/],
    [`${BASE}keys_file: gateway.keys\n`, "keys_file", /^must be an absolute path \(starting with \/\), not "gateway\.keys"$/],
    [`${BASE}sessions_file: ""\n`, "sessions_file", /^must be an absolute path such as .*, not empty$/],
    [`${BASE}keys_file: /x/k\nsessions_file: /x/k\n`, "sessions_file", /^must be another file than keys_file \(\/x\/k\)$/],
    [`${BASE}password_file: passwords\n`, "password_file", /absolute path/],
    [`${BASE}invites_dir: [a]\n`, "invites_dir", /^must be an absolute path such as .*, not a list$/],
    [`${BASE}session: {idle: soon}\n`, "session.idle", /^must be a duration: a whole number and a unit \(ms, s, m, h or d\) such as 30m, not "soon"$/],
    [`${BASE}session: {idle: 30}\n`, "session.idle", /not 30 \(write 30s or 30m\)$/],
    [`${BASE}session: {idle: 1h30m}\n`, "session.idle", /a whole number and a unit/],
    [`${BASE}session: {idle: 0s}\n`, "session.idle", /^must be from 1s to 30d, not 0s$/],
    [`${BASE}session: {idle: 31d}\n`, "session.idle", /^must be from 1s to 30d, not 31d$/],
    [`${BASE}session: {absolute: 401d}\n`, "session.absolute", /^must be from 1s to 400d, not 401d$/],
    [`${BASE}session: {idle: 13h}\n`, "session.idle", /^must not be longer than session\.absolute \(12h\), not 13h$/],
    [`${BASE}session: {recheck: 2h}\n`, "session.recheck", /^must be from 1s to 1h, not 2h$/],
    [`${BASE}session:\n`, "session", /^must be a mapping/],
    [`${BASE}session: [idle]\n`, "session", /^must be a mapping/],
    [`${BASE}regulation: {max_retries: 0}\n`, "regulation.max_retries", /^must be from 1 to 100, not 0$/],
    [`${BASE}regulation: {max_retries: 2.5}\n`, "regulation.max_retries", /^must be a whole number from 1 to 100, not 2\.5$/],
    [`${BASE}regulation: {max_retries: "5"}\n`, "regulation.max_retries", /^must be a whole number from 1 to 100, not "5"$/],
    [`${BASE}regulation: {find_time: 2d}\n`, "regulation.find_time", /^must be from 1s to 1d, not 2d$/],
    [`${BASE}regulation: {ban_time: 8d}\n`, "regulation.ban_time", /^must be from 1s to 7d, not 8d$/],
    [`${BASE}regulation: {user_delay_max: 2m}\n`, "regulation.user_delay_max", /^must be from 1s to 1m, not 2m$/],
    [`${BASE}regulation: {max_entries: 10}\n`, "regulation.max_entries", /^must be from 1000 to 10000000, not 10$/],
    [`${BASE}limits: {first_byte_timeout: 10m}\n`, "limits.first_byte_timeout", /^must be from 1s to 5m, not 10m$/],
    [`${BASE}limits: {head_timeout: 0s}\n`, "limits.head_timeout", /^must be from 1s to 5m, not 0s$/],
    [`${BASE}limits: {body_timeout: 11m}\n`, "limits.body_timeout", /^must be from 1s to 10m, not 11m$/],
    [`${BASE}limits: {keep_alive_timeout: 2h}\n`, "limits.keep_alive_timeout", /^must be from 1s to 1h, not 2h$/],
    [`${BASE}limits: {connections_per_address: 0}\n`, "limits.connections_per_address", /^must be from 1 to 10000, not 0$/],
    [`${BASE}limits: {max_headers: 5000}\n`, "limits.max_headers", /^must be from 10 to 1000, not 5000$/],
    [`${BASE}limits: {app_requests_per_user: 0}\n`, "limits.app_requests_per_user", /^must be from 1 to 10000, not 0$/],
    [`${BASE}limits: {app_body_idle_timeout: 11m}\n`, "limits.app_body_idle_timeout", /^must be from 1s to 10m, not 11m$/],
    [`${BASE}forward_auth: maybe\n`, "forward_auth", /^must be status \(nginx auth_request: 200 or 401\) or redirect \(Traefik, Caddy: a redirect to the login page\), not "maybe"$/],
    [`${BASE}cookie_name: "a b"\n`, "cookie_name", /^must be 1 to 64 letters, digits or/],
    [`${BASE}cookie_name: a;b\n`, "cookie_name", /a cookie name/],
    [`${BASE}cookie_name: __Host-sid\n`, "cookie_name", /^must not start with __Host- or __Secure-: the gateway adds the __Host- prefix itself when public_url is https; write sid$/],
    [`${BASE}cookie_name: otpgate_csrf\n`, "cookie_name", /^otpgate_csrf is the gateway's CSRF cookie; choose another name$/],
    [`${BASE}issuer: "a:b"\n`, "issuer", /must not contain ":"/],
    [`${BASE}issuer: ${"x".repeat(65)}\n`, "issuer", /at most 64 characters/],
    [`${BASE}issuer: "a\\nb"\n`, "issuer", /^must not contain control characters$/],
    [`${BASE}trusted_proxies: 10.0.0.0/8\n`, "trusted_proxies", /^must be a list such as \[10\.0\.0\.0\/8, 192\.0\.2\.7\]/],
    [`${BASE}trusted_proxies: [10.0.0.0/8, proxy.local]\n`, "trusted_proxies[1]", /^"proxy\.local" is not an IP address or CIDR range; write one such as .*\(host names are not resolved\)$/],
    [`${BASE}trusted_proxies: [10.0.0.1/8]\n`, "trusted_proxies[0]", /^"10\.0\.0\.1\/8" has address bits set after the \/8 prefix; write 10\.0\.0\.0\/8$/],
    [`${BASE}trusted_proxies: [0.0.0.0/0]\n`, "trusted_proxies[0]", /would trust every address/],
    [`${BASE}trusted_proxies: [10.0.0.0/8, 42]\n`, "trusted_proxies[1]", /^must be an IP address or CIDR range such as 10\.0\.0\.0\/8, not 42$/],
    [`${BASE}metrics_listen: 127.0.0.1:9091\n`, "metrics_listen", /^must be another address than listen \(127\.0\.0\.1:9091\)/],
    [`${BASE}listen: 0.0.0.0:9000\nmetrics_listen: 127.0.0.1:9000\n`, "metrics_listen", /another address than listen \(0\.0\.0\.0:9000\)/],
    [`${BASE}metrics_listen: metrics\n`, "metrics_listen", /^must be HOST:PORT/],
    [`${BASE}user_lookup_timeout: 10ms\n`, "user_lookup_timeout", /^must be from 100ms to 1m, not 10ms$/],
  ];
  for (const [yaml, path, message] of cases) {
    const p = only(yaml);
    assert.equal(p.path, path, yaml);
    assert.match(p.message, message, yaml);
  }
});

test("unknown keys are errors at every level, with 'did you mean' when a known key is close", () => {
  const cases: [yaml: string, path: string, message: string][] = [
    [`${BASE}session: {idel: 30m}\n`, "session.idel", "unknown key (did you mean idle?)"],
    [`${BASE}listn: 127.0.0.1:9091\n`, "listn", "unknown key (did you mean listen?)"],
    [`${BASE}upsteam: http://x\n`, "upsteam", "unknown key (did you mean upstream?)"],
    [`${BASE}publicUrl: x\n`, "publicUrl", "unknown key (did you mean public_url?)"],
    [`${BASE}trusted-proxies: []\n`, "trusted-proxies", "unknown key (did you mean trusted_proxies?)"],
    [`${BASE}session_file: /x\n`, "session_file", "unknown key (did you mean sessions_file?)"],
    [`${BASE}regulation: {max_retry: 3}\n`, "regulation.max_retry", "unknown key (did you mean max_retries?)"],
    [`${BASE}limits: {headers: 50}\n`, "limits.headers", "unknown key"],
    [`${BASE}limits: {max_header: 50}\n`, "limits.max_header", "unknown key (did you mean max_headers?)"],
    [`${BASE}tls: {cert: /x, key: /y, ca: /z}\n`, "tls.ca", "unknown key"],
    [`${BASE}max_retries: 3\n`, "max_retries", "unknown key (did you mean regulation.max_retries?)"],
    [`${BASE}idle: 30m\n`, "idle", "unknown key (did you mean session.idle?)"],
    [`${BASE}first_byte_timeout: 5s\n`, "first_byte_timeout", "unknown key (did you mean limits.first_byte_timeout?)"],
    [`${BASE}session: {ban_time: 5m}\n`, "session.ban_time", "unknown key (did you mean regulation.ban_time?)"],
    [`${BASE}regulation: {keys_file: /x}\n`, "regulation.keys_file", "unknown key (did you mean keys_file (at the top level)?)"],
    [`${BASE}colour: blue\n`, "colour", "unknown key"],
  ];
  for (const [yaml, path, message] of cases) {
    const list = problems(yaml).filter((p) => p.path === path);
    assert.deepEqual(list, [{ path, message }], yaml);
  }
  assert.deepEqual(problems(`${BASE}"idle\\n  listen": 1\n`), [{ path: '"idle\\n  listen"', message: "unknown key" }], "a key cannot forge a second problem line");
  assert.equal(didYouMean("", "x"), null);
  assert.equal(didYouMean("", "LISTEN"), "listen");
});

test("every problem is reported at once, in the order of the file, each with its path", () => {
  const yaml = `
public_url: ftp://x
listn: 1
session: {idel: 3m, idle: 30}
proxy_engine: fast
limits: {head_timeout: 2s, max_headers: 1}
head_timeout: 3s
max_retries: 3
trusted_proxies: [10.0.0.1/8, x]
regulation: {ban_time: forever}
forward_auth: maybe
`;
  let error: unknown;
  try {
    parseGatewayConfig(yaml, "/etc/otpgate/gateway.yaml");
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof GatewayConfigError);
  assert.deepEqual(
    error.problems.map((p) => p.path),
    [
      "public_url",
      "listn",
      "session.idle",
      "session.idel",
      "proxy_engine",
      "limits.max_headers",
      "head_timeout",
      "max_retries",
      "trusted_proxies[0]",
      "trusted_proxies[1]",
      "regulation.ban_time",
      "forward_auth",
    ],
  );
  const lines = error.message.split("\n");
  assert.equal(lines[0], "/etc/otpgate/gateway.yaml has 12 problems:");
  assert.equal(lines.length, 13);
  assert.equal(lines[4], "  session.idel: unknown key (did you mean idle?)");
  assert.ok(
    lines.slice(1).every((l) => /^ {2}[a-z_.[\]0-9]+: /.test(l)),
    lines.join("\n"),
  );
});

test("one problem is one line: source, path, message", () => {
  assert.throws(() => parseGatewayConfig(`${BASE}session: {idel: 3m}\n`, "gw.yaml"), { message: "gw.yaml: session.idel: unknown key (did you mean idle?)" });
});

test("YAML that cannot be read: every syntax error with its line, duplicate keys, alias bombs, not a mapping", () => {
  const dup = problems("public_url: https://a.example\npublic_url: https://b.example\nsession: [\n");
  assert.deepEqual(
    dup.map((p) => p.path),
    ["line 2, column 1", "line 4, column 1"],
  );
  assert.match(dup[0]!.message, /^not valid YAML: Map keys must be unique$/);
  assert.match(dup[1]!.message, /^not valid YAML: /);
  assert.match(only("x: *nope\n").message, /^not valid YAML: Unresolved alias/);
  const bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
  assert.match(only(bomb).message, /^not valid YAML: Excessive alias count/);
  for (const notMapping of ["", "# only a comment\n", "- public_url: x\n", "just text\n", "42\n"]) {
    assert.deepEqual(only(notMapping), { path: "", message: "must be a YAML mapping (key: value lines), such as public_url: https://app.example.com" }, notMapping);
  }
});

test("loadGatewayConfig names the file it cannot read, and the file in every problem", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.throws(() => loadGatewayConfig(join(dir, "none.yaml")), { name: "ConfigError", message: `cannot read ${join(dir, "none.yaml")} (ENOENT)` });
  writeFileSync(join(dir, "gw.yaml"), "public_url: https://x.example\nlimits: {max_headers: 1}\n");
  assert.throws(() => loadGatewayConfig(join(dir, "gw.yaml")), { message: `${join(dir, "gw.yaml")}: limits.max_headers: must be from 10 to 1000, not 1` });
});

test("durations: whole numbers with a unit; the helper for command-line flags is kept", () => {
  assert.equal(duration("--expires", "3d", 0), 3 * 86_400_000);
  assert.equal(duration("--expires", undefined, 42), 42);
  assert.throws(() => duration("--expires", "3 days", 0), { name: "ConfigError", message: '--expires must be a duration such as 30s, 5m or 12h, not "3 days"' });
  assert.deepEqual([0, 250, 1000, 90_000, 3_600_000, 86_400_000, 1500].map(formatDuration), ["0ms", "250ms", "1s", "90s", "1h", "1d", "1500ms"]);
});
