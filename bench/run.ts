// npm run bench: otpgate against the reference in the same run.
//  1. In-process decisions per second (verify(), SHA1, window 3).
//  2. Whole process, clean environment (as pam_exec runs it): `otpgate verify` vs `node -e 0` and vs
//     pamtester + pam_google_authenticator.so on the same kind of file; medians of interleaved runs.
//  3-5. The PAM login hook, a full SSH login, the web gateway.
//  6. The resident server (bench/server.ts): PAM through pam_radius_auth vs the C module, the time
//     per decision, the gateway's round trip over the unix socket. BENCH_ONLY=server runs only 6.
//  7. The fleet store (bench/fleet.ts): pgbench's single-row UPDATE on a throwaway PostgreSQL cluster
//     against accepted logins per second through `otpgate server --store` on it, and the file store.
//     BENCH_ONLY=fleet runs only 7.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_POLICY, verify } from "../src/core/verify.js";
import { nodeMacFactory } from "../src/platform/mac.js";
import { codeAt } from "../test/helpers/otp.js";
import { fleetBench } from "./fleet.js";
import { serverBench } from "./server.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(ROOT, "dist/otpgate.cjs");
const SECRET = "FJZHBXSFIQZ5OUXXTDKKY4NG3RUTJWCQ";
const RUNS = Number(process.env.BENCH_RUNS ?? 30);

function perSecond(label: string, text: string, entry: (i: number) => string, policy = DEFAULT_POLICY, ms = 1500): number {
  const now = 1_700_000_000_000;
  for (let i = 0; i < 2000; i++) verify(text, entry(i), now, policy, nodeMacFactory);
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 1000; i++) verify(text, entry(n + i), now, policy, nodeMacFactory);
    n += 1000;
    elapsed = performance.now() - start;
  }
  const rate = (n / elapsed) * 1000;
  console.log(`  ${label.padEnd(58)} ${Math.round(rate).toLocaleString("en-US").padStart(10)} /s`);
  return rate;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Cmd {
  readonly label: string;
  readonly argv: string[];
  readonly input?: () => string;
  readonly times: number[];
}

function timeAll(cmds: Cmd[]): void {
  for (const c of cmds) for (let i = 0; i < 3; i++) spawnSync(c.argv[0]!, c.argv.slice(1), { env: {}, input: c.input?.() ?? "" });
  for (let r = 0; r < RUNS; r++) {
    for (const c of cmds) {
      const input = c.input?.() ?? "";
      const t0 = process.hrtime.bigint();
      const res = spawnSync(c.argv[0]!, c.argv.slice(1), { env: {}, input, stdio: ["pipe", "ignore", "ignore"] });
      c.times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (res.error) throw res.error;
    }
  }
}

function show(cmds: Cmd[], base: Cmd): void {
  for (const c of cmds) {
    const m = median(c.times);
    console.log(`  ${c.label.padEnd(58)} ${m.toFixed(1).padStart(7)} ms   ${(m / median(base.times)).toFixed(2)}x ${base.label}`);
  }
}

if (process.env.BENCH_ONLY === "server") {
  await serverBench({ root: ROOT, cli: CLI, secret: SECRET, runs: RUNS });
  process.exit(0);
}
if (process.env.BENCH_ONLY === "fleet") {
  await fleetBench({ root: ROOT, cli: CLI, runs: RUNS });
  process.exit(0);
}
if (process.env.BENCH_ONLY === "gateway") {
  await gatewayBench();
  process.exit(0);
}
console.log(`otpgate benchmark (node ${process.version}, ${RUNS} interleaved runs per command, clean environment)\n`);
console.log("1. In-process decisions (verify(): parse, rate limit, code check, edit; SHA1, window 3)");
const plain = `${SECRET}\n" WINDOW_SIZE 3\n" TOTP_AUTH\n`;
const typical = `${SECRET}\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n23456789\n34567890\n45678901\n56789012\n`;
const good = codeAt(SECRET, Math.floor(1_700_000_000 / 30));
const noSkew = { ...DEFAULT_POLICY, noSkewAdjust: true };
const accepted = perSecond("accepted code, plain file", plain, () => good);
perSecond("accepted code, typical file (rate limit, reuse, 5 codes)", typical.replace("3 30", "100 3600"), () => good);
const wrong = perSecond("wrong code, noskewadj", plain, (i) => String(100000 + (i % 800000)), noSkew);
perSecond("wrong code with the ±20-step skew search (default)  ", plain, (i) => String(100000 + (i % 800000)), DEFAULT_POLICY, 800);
console.log(`  target >= 150,000/s: ${accepted >= 150_000 && wrong >= 150_000 ? "met" : "NOT met"}`);

const dir = mkdtempSync(join(tmpdir(), "otpgate-bench-"));
const service = `otpgate-bench-${process.pid}`;
const pamFile = join("/etc/pam.d", service);
const canPam = process.geteuid?.() === 0 && existsSync("/usr/bin/pamtester") && existsSync("/lib/x86_64-linux-gnu/security/pam_google_authenticator.so");
try {
  console.log("\n2. Whole process, median wall time (env -i equivalent: empty environment)");
  const node = process.execPath;
  const fileA = join(dir, "accept.ga");
  const fileR = join(dir, "ref.ga");
  const fileW = join(dir, "write.ga");
  const fileWR = join(dir, "write-ref.ga");
  const wrongFile = `${SECRET}\n" RATE_LIMIT 100 3600\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  for (const [f, t] of [
    [fileA, plain],
    [fileR, plain],
    [fileW, wrongFile],
    [fileWR, wrongFile],
  ] as const)
    writeFileSync(f, t, { mode: 0o400 });
  const now = () => codeAt(SECRET, Math.floor(Date.now() / 30000));
  const base: Cmd = { label: "node -e 0", argv: [node, "-e", "0"], times: [] };
  const accept: Cmd = { label: "otpgate verify (accepted, no write)", argv: [node, CLI, "verify", "-s", fileA, now()], times: [] };
  const write: Cmd = { label: "otpgate verify (wrong code, state written + fsync)", argv: [node, CLI, "verify", "--no-skew-adjust", "-s", fileW, "000000"], times: [] };
  const cmds = [base, accept, write];
  let refAccept: Cmd | null = null;
  let refWrite: Cmd | null = null;
  if (canPam) {
    writeFileSync(pamFile, `auth required pam_google_authenticator.so secret=${dir}/\${USER}.ga user=root noskewadj\n`);
    // pamtester's user name selects the file through secret=${USER}
    refAccept = { label: "pamtester + pam_google_authenticator.so (accepted)", argv: ["/usr/bin/pamtester", service, "ref", "authenticate"], input: () => now() + "\n", times: [] };
    refWrite = { label: "pamtester + pam_google_authenticator.so (wrong, written)", argv: ["/usr/bin/pamtester", service, "write-ref", "authenticate"], input: () => "000000\n", times: [] };
    cmds.push(refAccept, refWrite);
  } else {
    console.log("  (pamtester comparison skipped: needs root and scripts/install-test-deps.sh)");
  }
  timeAll(cmds);
  show(cmds, base);
  const ratio = median(accept.times) / median(base.times);
  console.log(`\n  otpgate verify / node -e 0: ${ratio.toFixed(2)}x (target <= 1.25x): ${ratio <= 1.25 ? "met" : "NOT met"}`);
  if (refAccept && refWrite) {
    console.log(`  otpgate verify / pamtester+module, accepted: ${(median(accept.times) / median(refAccept.times)).toFixed(2)}x`);
    console.log(`  otpgate verify / pamtester+module, wrong code with write: ${(median(write.times) / median(refWrite.times)).toFixed(2)}x`);
  }
  console.log("\n  commands (run with an empty environment):");
  for (const c of cmds) console.log(`    ${c.input ? `printf '%s\\n' CODE | ` : ""}${c.argv.join(" ")}`);

  if (canPam) {
    console.log("\n3. The PAM login hook: pamtester + pam_exec (expose_authtok) running otpgate pam vs running node -e 0");
    const hookFile = join(dir, "hook.ga");
    writeFileSync(hookFile, plain, { mode: 0o400 });
    const hookService = `${service}-hook`;
    const baseService = `${service}-base`;
    const stack = (cmd: string) => `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${cmd}\nauth requisite pam_deny.so\nauth required pam_permit.so\n`;
    writeFileSync(join("/etc/pam.d", hookService), stack(`${node} ${CLI} pam secret=${hookFile} user=root`));
    writeFileSync(join("/etc/pam.d", baseService), stack(`${node} -e 0`));
    try {
      const hookBase: Cmd = { label: "pamtester + pam_exec + node -e 0", argv: ["/usr/bin/pamtester", baseService, "root", "authenticate"], input: () => "123456\n", times: [] };
      const hook: Cmd = { label: "pamtester + pam_exec + otpgate pam (accepted)", argv: ["/usr/bin/pamtester", hookService, "root", "authenticate"], input: () => now() + "\n", times: [] };
      timeAll([hookBase, hook]);
      show([hookBase, hook], hookBase);
      const hookRatio = median(hook.times) / median(hookBase.times);
      console.log(`\n  login hook ratio: ${hookRatio.toFixed(2)}x (target <= 1.25x): ${hookRatio <= 1.25 ? "met" : "NOT met"}`);
      console.log(`  PAM lines: ${stack(`${node} ${CLI} pam secret=${hookFile} user=root`).split("\n")[0]}`);
      console.log(`             ${stack(`${node} -e 0`).split("\n")[0]}`);
    } finally {
      for (const f of [hookService, baseService]) if (existsSync(join("/etc/pam.d", f))) unlinkSync(join("/etc/pam.d", f));
    }
    await sshBench();
    await gatewayBench();
    await serverBench({ root: ROOT, cli: CLI, secret: SECRET, runs: RUNS });
  }
} finally {
  if (existsSync(pamFile)) unlinkSync(pamFile);
  rmSync(dir, { recursive: true, force: true });
}
// Needs root and PostgreSQL, not PAM: it says itself when it is skipped.
await fleetBench({ root: ROOT, cli: CLI, runs: RUNS });

/** 4. A full SSH login (key + code + one command) with otpgate vs pam_google_authenticator.so. */
async function sshBench(): Promise<void> {
  if (!existsSync("/usr/sbin/sshd") || !existsSync("/usr/lib/python3/dist-packages/paramiko")) {
    console.log("\n4. SSH login benchmark skipped: needs openssh-server and python3-paramiko (scripts/install-test-deps.sh)");
    return;
  }
  const { privateSshd } = await import("../test/helpers/sshd.js");
  const work = mkdtempSync(join(tmpdir(), "otpgate-bench-ssh-"));
  const user = `otpb${process.pid % 100000}`;
  const s = privateSshd(work);
  try {
    spawnSync("useradd", ["-m", "-s", "/bin/sh", user]);
    const info = spawnSync("getent", ["passwd", user], { encoding: "utf8" }).stdout.split(":");
    const account = { name: user, uid: Number(info[2]), gid: Number(info[3]), home: info[5]! };
    s.authorize(account);
    const gaFile = join(account.home, ".google_authenticator");
    writeFileSync(gaFile, plain, { mode: 0o400 });
    spawnSync("chown", [`${account.uid}:${account.gid}`, gaFile]);
    const pamDir = join(s.root, "etc/pam.d");
    const otpStack = join(work, "stack-otpgate");
    const gaStack = join(work, "stack-ga");
    const common = "account include common-account\nsession required pam_permit.so\n";
    writeFileSync(
      otpStack,
      `auth [success=1 ignore=1 default=ignore] pam_exec.so quiet quiet_log expose_authtok ${process.execPath} ${CLI} pam\nauth requisite pam_deny.so\nauth required pam_permit.so\n${common}`,
    );
    writeFileSync(gaStack, `auth required pam_google_authenticator.so\n${common}`);
    const radiusSecret = join(work, "radius.secret");
    const radiusConf = join(work, "pam_radius.conf");
    const radiusPort = 40000 + (process.pid % 20000);
    const radiusStack = join(work, "stack-radius");
    writeFileSync(radiusSecret, "bench-radius-secret-0123456789\n", { mode: 0o600 });
    writeFileSync(radiusConf, `127.0.0.1:${radiusPort} bench-radius-secret-0123456789 3\n`, { mode: 0o600 });
    writeFileSync(radiusStack, `auth required pam_radius_auth.so conf=${radiusConf} [prompt=Verification code] force_prompt\n${common}`);
    const { spawn } = await import("node:child_process");
    const checker = spawn(process.execPath, [CLI, "radius", "--listen", `127.0.0.1:${radiusPort}`, "--secret-file", radiusSecret], { stdio: ["ignore", "ignore", "pipe"] });
    await new Promise<void>((resolve) => checker.stderr!.on("data", (d: Buffer) => d.toString().includes("listening") && resolve()));
    writeFileSync(join(s.config), readFileSync(s.config, "utf8").replace("KbdInteractiveAuthentication no", "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive"));
    void pamDir;
    await s.start();
    const runs = Math.max(15, Number(process.env.BENCH_SSH_RUNS ?? 15));
    const variants = [`otpgate=${otpStack}`, `google-authenticator=${gaStack}`];
    const withRadius = existsSync("/lib/x86_64-linux-gnu/security/pam_radius_auth.so");
    if (withRadius) variants.push(`radius=${radiusStack}`);
    const r = spawnSync(
      "/usr/bin/python3",
      [join(ROOT, "bench/ssh_login_bench.py"), "127.0.0.1", String(s.port), user, s.clientKey, SECRET, join("/etc/pam.d", s.service), String(runs), ...variants],
      { encoding: "utf8", timeout: 600_000 },
    );
    checker.kill("SIGTERM");
    if (r.status !== 0) {
      console.log(`\n4. SSH login benchmark failed: ${r.stderr.trim().split("\n").slice(-3).join(" ")}`);
      return;
    }
    const times = JSON.parse(r.stdout) as Record<string, number[]>;
    const otp = median(times.otpgate!);
    const ga = median(times["google-authenticator"]!);
    console.log(`\n4. Full SSH login (paramiko: key, keyboard-interactive code, run 'true'), one sshd on 127.0.0.1, ${runs} interleaved logins each`);
    console.log(`  ${"sshd + pam_google_authenticator.so".padEnd(58)} ${ga.toFixed(1).padStart(7)} ms`);
    console.log(`  ${"sshd + pam_exec + otpgate pam".padEnd(58)} ${otp.toFixed(1).padStart(7)} ms   ${(otp / ga).toFixed(2)}x`);
    console.log(`  pam_exec backend ratio: ${(otp / ga).toFixed(2)}x (target <= 1.10x): ${otp / ga <= 1.1 ? "met" : "NOT met: every login starts a Node process (~25 ms)"}`);
    if (times.radius) {
      const rad = median(times.radius);
      console.log(`  ${"sshd + pam_radius_auth + otpgate radius (resident)".padEnd(58)} ${rad.toFixed(1).padStart(7)} ms   ${(rad / ga).toFixed(2)}x`);
      console.log(`  radius backend ratio: ${(rad / ga).toFixed(2)}x (target <= 1.10x): ${rad / ga <= 1.1 ? "met" : "NOT met"}`);
    }
  } finally {
    s.cleanup();
    spawnSync("userdel", ["-r", "-f", user], { stdio: "ignore" });
    rmSync(work, { recursive: true, force: true });
  }
}

interface WrkResult {
  readonly rps: number;
  /** Latency percentiles, ms. */
  readonly p50: number;
  readonly p99: number;
  /** CPU time (user + system) the server process `pid` spent per request during the run, µs; NaN when unknown. */
  readonly cpuUs: number;
}

/** CPU time of a process so far, ms (utime + stime from /proc; Linux clock ticks are 10 ms). */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

function wrk(url: string, headers: string[], seconds = 5, serverPid?: number): WrkResult {
  const cpu0 = cpuMs(serverPid);
  const args = ["-t2", "-c32", `-d${seconds}s`, "--latency", ...headers.flatMap((h) => ["-H", h]), url];
  const r = spawnSync("/usr/bin/wrk", args, { encoding: "utf8", timeout: (seconds + 30) * 1000 });
  const m = /Requests\/sec:\s+([0-9.]+)/.exec(r.stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} error responses from ${url}`);
  const pct = (p: string) => {
    const hit = new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s)$`, "m").exec(r.stdout);
    return hit ? Number(hit[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[hit[2]!]! : NaN;
  };
  const requests = Number(/([0-9]+) requests in/.exec(r.stdout)?.[1] ?? NaN);
  return { rps: m ? Number(m[1]) : 0, p50: pct("50"), p99: pct("99"), cpuUs: ((cpuMs(serverPid) - cpu0) * 1000) / requests };
}

/** One line: why forward-auth stays below 40,000/s on this machine (the ceiling, or the gateway's own cost). */
function forwardAuthShortfall(forwardAuth: WrkResult, bare: WrkResult, cpuCount: number, ownUs: number): string {
  const bareRate = Math.round(bare.rps).toLocaleString("en-US");
  if (bare.rps < forwardAuth.rps) return `the machine was too busy to tell (bare node:http measured ${bareRate}/s, below the gateway): run again when the load average is below the number of CPUs.`;
  if (bare.rps < 40_000)
    return `node:http answering 200 with no work at all manages only ${bareRate}/s here (${cpuCount} CPUs shared with wrk and the other servers), so 40,000/s would need ${(40_000 / bare.rps).toFixed(2)}x of a server that does nothing; the gateway reaches ${(forwardAuth.rps / bare.rps).toFixed(2)}x of that ceiling.`;
  const extra = forwardAuth.cpuUs - bare.cpuUs;
  return `node:http alone does ${bareRate}/s here, and the gateway's decision costs ${Number.isFinite(extra) ? `${extra.toFixed(1)} µs` : "some"} more CPU per request than doing nothing, of which ${ownUs.toFixed(1)} µs is the decision itself (cookie, session cache, every check) and the rest node:http and the server shell for a longer request and answer.`;
}

/** The gateway app's own time per forward-auth decision (session cookie, cache, every check, the answer), µs, in-process. */
async function appDecisionUs(): Promise<number> {
  const { testApp } = await import("../test/helpers/gateway-app.js");
  const { app, signIn } = testApp();
  const headers: [string, string][] = [
    ["host", "127.0.0.1"],
    ["cookie", signIn("alice").cookie],
  ];
  const req = { method: "GET", target: "/_otpgate/auth", headers, remoteAddress: "127.0.0.1", body: null };
  const run = (n: number) => {
    for (let i = 0; i < n; i++) if ((app.handle(req) as { status: number }).status !== 200) throw new Error("the in-process decision refused a valid session");
  };
  run(100_000);
  const n = 500_000;
  const t0 = process.hrtime.bigint();
  run(n);
  return Number(process.hrtime.bigint() - t0) / n / 1000;
}

/** 5. The web gateway: proxied requests/s vs nginx proxy_pass, and forward-auth decisions/s. */
async function gatewayBench(): Promise<void> {
  if (!existsSync("/usr/bin/wrk") || !existsSync("/usr/sbin/nginx")) {
    console.log("\n5. Gateway benchmark skipped: needs wrk and nginx (scripts/install-test-deps.sh)");
    return;
  }
  const { startGateway, http, cookiesFrom, cookieHeader } = await import("../test/helpers/gateway.js");
  const { spawn } = await import("node:child_process");
  const work = mkdtempSync(join(tmpdir(), "otpgate-bench-gw-"));
  const user = `otpg${process.pid % 100000}`;
  const children: { kill(signal?: NodeJS.Signals): boolean }[] = [];
  try {
    spawnSync("useradd", ["-m", "-s", "/bin/sh", user]);
    const home = spawnSync("getent", ["passwd", user], { encoding: "utf8" }).stdout.split(":")[5]!;
    spawnSync(process.execPath, [CLI, "enroll", "--user", user, "-t", "-D", "-W", "-u", "-q"]);
    const secret = readFileSync(join(home, ".google_authenticator"), "latin1").split("\n")[0]!;
    const upstreamPort = 43000 + (process.pid % 5000);
    const app = spawn(
      process.execPath,
      ["-e", `require("http").createServer((q,s)=>{s.writeHead(200,{"content-type":"text/plain"});s.end("hello from the app\\n")}).listen(${upstreamPort},"127.0.0.1")`],
      { stdio: "ignore" },
    );
    children.push(app);
    // The ceiling for forward-auth on this machine: node:http answering 200 with no work at all.
    const barePort = upstreamPort + 2;
    const bare = spawn(process.execPath, ["-e", `require("http").createServer((q,s)=>{s.writeHead(200);s.end()}).listen(${barePort},"127.0.0.1")`], { stdio: "ignore" });
    children.push(bare);
    const gw = await startGateway(work, { public_url: "http://127.0.0.1", upstream: `http://127.0.0.1:${upstreamPort}`, allowed_hosts: ["127.0.0.1"] });
    children.push({ kill: () => (gw.stop(), true) });
    const nginxPort = upstreamPort + 1;
    const conf = join(work, "nginx.conf");
    writeFileSync(
      conf,
      `daemon off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${work}/b; proxy_temp_path ${work}/p; fastcgi_temp_path ${work}/f; uwsgi_temp_path ${work}/u; scgi_temp_path ${work}/s;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 32; }
  server { listen 127.0.0.1:${nginxPort}; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
    );
    const nginx = spawn("/usr/sbin/nginx", ["-c", conf, "-p", work], { stdio: "ignore" });
    children.push(nginx);
    await new Promise((r) => setTimeout(r, 500));
    const form = await http(gw.base, "GET", "/_otpgate/login");
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    const ok = await http(
      gw.base,
      "POST",
      "/_otpgate/login",
      { cookie: cookieHeader(cookiesFrom(form)) },
      new URLSearchParams({ csrf, rd: "/", user, code: codeAt(secret, Math.floor(Date.now() / 30000)) }).toString(),
    );
    const cookie = `Cookie: otpgate_session=${cookiesFrom(ok).otpgate_session}`;
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const bareNode = wrk(`http://127.0.0.1:${barePort}/`, [], 5, bare.pid);
    const direct = wrk(`http://127.0.0.1:${upstreamPort}/`, []);
    const viaNginx = wrk(`http://127.0.0.1:${nginxPort}/`, []);
    const viaGateway = wrk(`${gw.base}/`, [cookie]);
    const forwardAuth = wrk(`${gw.base}/_otpgate/auth`, [cookie], 5, gw.pid);
    const ownUs = await appDecisionUs();
    const rate = (x: number) => Math.round(x).toLocaleString("en-US").padStart(10);
    const ratio = viaGateway.rps / viaNginx.rps;
    console.log(
      `\n5. Web gateway (wrk -t2 -c32 -d5s on 127.0.0.1; the app is a one-line Node server; latency p50/p99; ${cpus().length} CPUs shared by wrk, the servers and the app; load average before: ${load})`,
    );
    if (Number(load.split(" ")[0]) > cpus().length)
      console.log(`  the load average (${load.split(" ")[0]}) is above the ${cpus().length} CPUs: other work shares them, so these figures are lower and noisier than on a quiet machine`);
    console.log(`  ${"bare node:http (200, no work: the ceiling for node:http)".padEnd(58)} ${rate(bareNode.rps)} req/s   ${bareNode.p50.toFixed(2)}/${bareNode.p99.toFixed(2)} ms`);
    console.log(`  ${"app directly".padEnd(58)} ${rate(direct.rps)} req/s   ${direct.p50.toFixed(2)}/${direct.p99.toFixed(2)} ms`);
    console.log(`  ${"nginx proxy_pass -> app".padEnd(58)} ${rate(viaNginx.rps)} req/s   ${viaNginx.p50.toFixed(2)}/${viaNginx.p99.toFixed(2)} ms`);
    console.log(
      `  ${"otpgate gateway (session check + undici proxy) -> app".padEnd(58)} ${rate(viaGateway.rps)} req/s   ${viaGateway.p50.toFixed(2)}/${viaGateway.p99.toFixed(2)} ms   ${ratio.toFixed(2)}x nginx`,
    );
    console.log(`  proxy ratio: ${ratio.toFixed(2)}x nginx (target >= 0.4x): ${ratio >= 0.4 ? "met" : "NOT met"}`);
    console.log(`  latency the gateway adds over the app directly: p50 ${(viaGateway.p50 - direct.p50).toFixed(2)} ms, p99 ${(viaGateway.p99 - direct.p99).toFixed(2)} ms (at 32 connections)`);
    const met = forwardAuth.rps >= 40_000;
    console.log(
      `  ${"forward-auth decisions (GET /_otpgate/auth, signed in)".padEnd(58)} ${rate(forwardAuth.rps)} /s   ${forwardAuth.p50.toFixed(2)}/${forwardAuth.p99.toFixed(2)} ms   ceiling here (bare node:http): ${rate(bareNode.rps).trim()}/s   (target >= 40,000/s: ${met ? "met" : "NOT met"})`,
    );
    const us = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} µs` : "?");
    console.log(
      `  forward-auth / bare node:http: ${(forwardAuth.rps / bareNode.rps).toFixed(2)}x; server CPU per request: gateway ${us(forwardAuth.cpuUs)}, bare node:http ${us(bareNode.cpuUs)} (user + system, incl. the socket writes)`,
    );
    console.log(`  the gateway app's own work per decision (in-process, no sockets): ${us(ownUs)}; the rest is node:http, the server shell and the socket write`);
    if (!met) console.log(`  why not 40,000/s: ${forwardAuthShortfall(forwardAuth, bareNode, cpus().length, ownUs)}`);
  } catch (err) {
    console.log(`\n5. Gateway benchmark failed: ${(err as Error).message}`);
  } finally {
    for (const c of children) c.kill("SIGTERM");
    spawnSync("userdel", ["-r", "-f", user], { stdio: "ignore" });
    rmSync(work, { recursive: true, force: true });
  }
}
