// The fleet store in the benchmark (issue 11, "Figures"), one run on one throwaway PostgreSQL cluster
// (test/helpers/postgres.ts, fsync on, synchronous_commit on: the settings are printed):
//  a) pgbench with a single-row UPDATE script (-n -f, several clients, -T seconds): each transaction
//     is one durable commit, so its TPS is the durable-write limit of that database on this machine;
//  b) accepted logins per second through `otpgate server --store postgres://...` on that database,
//     over RADIUS (PAP, Message-Authenticator on, a fresh socket per login as pam_radius_auth does),
//     the same number of concurrent clients; every login is a fresh valid code for one of many
//     enrolled users (HOTP: each accepted code moves the counter, so every login commits one row
//     change, as a TOTP login with DISALLOW_REUSE does); the ratio b/a (target >= 0.5x);
//  c) p50/p99 of one login at a time;
//  d) the same load and the same users on the file store (`otpgate server` without --store).
// For the reasons behind the ratio: pgbench also runs a login's statements (BEGIN, SELECT ... FOR
// UPDATE, the emergency-code digests, UPDATE, COMMIT; extended protocol as node-postgres sends them,
// and prepared), and every phase prints where the CPU went (bench/cpu.ts: the machine's busy share,
// PostgreSQL's, the server's and the client's CPU per operation, commits per operation).
// Nothing is bought with safety: the cluster runs with fsync and synchronous_commit on, the server
// decides every login with the one decision (core/verify.ts) and the answer is checked here.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { base32Encode } from "../src/core/base32.js";
import { POSTGRES_BIN, startCluster, type Cluster } from "../test/helpers/postgres.js";
import { codeAt } from "../test/helpers/otp.js";
import { busyShare, machineTicks, processCpuMs, treeCpuMs } from "./cpu.js";
import { radiusLogin, type LoginResult } from "./radius-client.js";

export interface FleetBenchOptions {
  readonly root: string;
  readonly cli: string;
  readonly runs: number;
}

const CLIENTS = Number(process.env.BENCH_FLEET_CLIENTS ?? 16);
const SECONDS = Number(process.env.BENCH_FLEET_SECONDS ?? 10);
const USERS = Number(process.env.BENCH_FLEET_USERS ?? 64);

interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly secret: string;
  /** The next HOTP counter to send. */
  counter: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const pad = (label: string) => `  ${label.padEnd(66)}`;

/** The document every bench user starts with: HOTP (every accepted code is a commit), window 3, five emergency codes. */
function documentOf(secret: string): string {
  const codes = Array.from({ length: 5 }, () => String(10_000_000 + (randomBytes(4).readUInt32BE(0) % 90_000_000)));
  return `${secret}\n" WINDOW_SIZE 3\n" HOTP_COUNTER 1\n${codes.join("\n")}\n`;
}

function createUsers(prefix: string, n: number): Account[] {
  const out: Account[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${prefix}${i}`;
    spawnSync("userdel", ["-r", "-f", name], { stdio: "ignore" });
    const r = spawnSync("useradd", ["-m", "-s", "/bin/sh", name], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`useradd ${name}: ${r.stderr.trim()}`);
    const f = spawnSync("getent", ["passwd", name], { encoding: "utf8" }).stdout.split(":");
    out.push({ name, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, secret: base32Encode(randomBytes(20)), counter: 1 });
  }
  return out;
}

/** The user's ~/.google_authenticator as the reference leaves it: owned by the user, 0400. */
function writeStateFile(a: Account): void {
  const path = join(a.home, ".google_authenticator");
  if (existsSync(path)) unlinkSync(path);
  writeFileSync(path, documentOf(a.secret), { mode: 0o400 });
  chownSync(path, a.uid, a.gid);
  chmodSync(path, 0o400);
}

function postgresIds(): { uid: number; gid: number } {
  const f = spawnSync("getent", ["passwd", "postgres"], { encoding: "utf8" }).stdout.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

interface Snapshot {
  readonly machine: { busy: number; total: number };
  readonly postgres: number;
  readonly server: number;
  readonly client: number;
  readonly commits: number;
}

/** Where the CPU went in one phase, per operation (a transaction, a login), and the commits per operation. */
interface Usage {
  readonly busy: number;
  readonly postgresMs: number;
  readonly serverMs: number | null;
  readonly clientMs: number;
  readonly commits: number;
}

const postmasterPid = (cluster: Cluster) => Number(readFileSync(join(cluster.dir, "data", "postmaster.pid"), "latin1").split("\n")[0]);
const commitsOf = (cluster: Cluster) => Number(cluster.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'otpgate'").trim());
/** The bench's own CPU and that of the children it has reaped (pgbench), in ms. */
const clientCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000 + processCpuMs(process.pid, true) - processCpuMs(process.pid);
};

function snapshot(cluster: Cluster, serverPid: number | null): Snapshot {
  const commits = commitsOf(cluster);
  return { machine: machineTicks(), postgres: treeCpuMs(postmasterPid(cluster)), server: serverPid === null ? 0 : processCpuMs(serverPid), client: clientCpuMs(), commits };
}

async function usageSince(cluster: Cluster, before: Snapshot, serverPid: number | null, ops: number): Promise<Usage> {
  const machine = machineTicks();
  const client = clientCpuMs();
  // A backend's counts reach the statistics within a second, and the CPU time of a backend that
  // ended (pgbench's) reaches the postmaster's once it has been reaped: read both after a pause.
  await new Promise((r) => setTimeout(r, 1500));
  const postgres = treeCpuMs(postmasterPid(cluster));
  const server = serverPid === null ? 0 : processCpuMs(serverPid);
  const commits = commitsOf(cluster);
  const per = (x: number) => (ops > 0 ? x / ops : NaN);
  return {
    busy: busyShare(before.machine, machine),
    postgresMs: per(postgres - before.postgres),
    serverMs: serverPid === null ? null : per(server - before.server),
    clientMs: per(client - before.client),
    commits: per(commits - before.commits - 1),
  };
}

const usageLine = (u: Usage, what: string) =>
  `    CPU busy ${(u.busy * 100).toFixed(0)}% of ${cpus().length} CPUs; CPU per ${what}: PostgreSQL ${u.postgresMs.toFixed(3)} ms${u.serverMs === null ? "" : `, otpgate server ${u.serverMs.toFixed(3)} ms`}, client ${u.clientMs.toFixed(3)} ms; commits per ${what}: ${u.commits.toFixed(2)}`;

/** The bench tables: one row per user, and five emergency-code rows per user (for the login-shaped script). */
function createBenchTables(cluster: Cluster, rows: number): void {
  cluster.psql(
    `CREATE TABLE bench_row (id integer PRIMARY KEY, n bigint NOT NULL); INSERT INTO bench_row SELECT g, 0 FROM generate_series(1, ${rows}) g;
     CREATE TABLE bench_code (id bigserial PRIMARY KEY, row_id integer NOT NULL REFERENCES bench_row (id), digest bytea NOT NULL); CREATE INDEX ON bench_code (row_id);
     INSERT INTO bench_code (row_id, digest) SELECT g, sha256(g::text::bytea) FROM generate_series(1, ${rows}) g, generate_series(1, 5);`,
  );
}

/** The single-row UPDATE: one durable commit per transaction, the database's durable-write limit. */
const UPDATE_SCRIPT = (rows: number) => `\\set id random(1, ${rows})\nUPDATE bench_row SET n = n + 1 WHERE id = :id;\n`;
/** The statements of one accepted login on the fleet store (stores/pg/account.ts), on the bench tables, parameters as node-postgres sends them. */
const LOGIN_SHAPED_SCRIPT = (rows: number) =>
  `\\set id random(1, ${rows})\nBEGIN;\nSELECT n FROM bench_row WHERE id = :id FOR UPDATE;\nSELECT id, digest FROM bench_code WHERE row_id = :id ORDER BY id;\nUPDATE bench_row SET n = n + 1 WHERE id = :id;\nCOMMIT;\n`;

interface PgbenchResult {
  readonly tps: number;
  readonly latencyMs: number;
  readonly command: string;
  readonly usage: Usage;
}

/** a) pgbench with `script` (-n -f), as the postgres account, CLIENTS clients for SECONDS. */
async function pgbench(cluster: Cluster, name: string, script: string, extra: string[] = []): Promise<PgbenchResult> {
  const file = join(cluster.dir, name);
  writeFileSync(file, script, { mode: 0o644 });
  const args = [
    "-h",
    cluster.socketDir,
    "-p",
    String(cluster.port),
    "-U",
    "postgres",
    "-n",
    "-f",
    file,
    ...extra,
    "-c",
    String(CLIENTS),
    "-j",
    String(Math.min(CLIENTS, cpus().length)),
    "-T",
    String(SECONDS),
    "otpgate",
  ];
  const before = snapshot(cluster, null);
  const r = spawnSync(join(POSTGRES_BIN, "pgbench"), args, { ...postgresIds(), encoding: "utf8", env: { PATH: "/usr/bin:/bin", LC_ALL: "C.UTF-8" }, timeout: (SECONDS + 60) * 1000 });
  const tps = /tps = ([0-9.]+) \(without initial connection time\)/.exec(r.stdout);
  const latency = /latency average = ([0-9.]+) ms/.exec(r.stdout);
  if (r.status !== 0 || !tps) throw new Error(`pgbench failed (${r.status}): ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ")}`);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? NaN);
  const usage = await usageSince(cluster, before, null, transactions);
  return { tps: Number(tps[1]), latencyMs: latency ? Number(latency[1]) : NaN, command: `pgbench ${args.join(" ").replace(cluster.socketDir, "SOCKETDIR").replace(cluster.dir, "DIR")}`, usage };
}

/** Start `otpgate server` (RADIUS only) with `extra` arguments; resolves once it listens. */
async function startServer(cli: string, port: number, secretFile: string, extra: string[]): Promise<{ child: ChildProcess; log: () => string }> {
  const argv = [cli, "server", "--no-socket", "--listen", `127.0.0.1:${port}`, "--secret-file", secretFile, ...extra];
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  });
  const ok = await new Promise<boolean>((resolve) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) resolve(true);
    });
    child.once("exit", () => resolve(false));
  });
  if (!ok) throw new Error(`otpgate server ${extra.join(" ")} did not start: ${err.trim().split("\n").slice(-3).join(" ")}`);
  return { child, log: () => out + err };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  await exited;
}

interface LoadResult {
  readonly perSecond: number;
  readonly accepted: number;
  readonly failed: Partial<Record<LoginResult, number>>;
  readonly p50: number;
  readonly p99: number;
}

/** The next valid code of `a` (HOTP; the server moves the counter on acceptance). */
const nextCode = (a: Account) => codeAt(a.secret, a.counter++);

/** b) `clients` concurrent loops for `seconds`, each over its own share of the users, one login in flight each. */
async function loadRun(port: number, key: Buffer, users: Account[], clients: number, seconds: number): Promise<LoadResult> {
  const failed: Partial<Record<LoginResult, number>> = {};
  const times: number[] = [];
  let accepted = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const loop = async (k: number) => {
    const mine = users.filter((_, i) => i % clients === k);
    for (let i = 0; performance.now() < end; i++) {
      const a = mine[i % mine.length]!;
      const r = await radiusLogin(port, key, a.name, nextCode(a));
      times.push(r.ms);
      if (r.result === "accepted") accepted++;
      else failed[r.result] = (failed[r.result] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, k) => loop(k)));
  const elapsed = (performance.now() - t0) / 1000;
  return { perSecond: accepted / elapsed, accepted, failed, p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** c) one login at a time, `n` of them. */
async function sequential(port: number, key: Buffer, users: Account[], n: number): Promise<{ p50: number; p99: number; failed: number }> {
  const times: number[] = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const a = users[i % users.length]!;
    const r = await radiusLogin(port, key, a.name, nextCode(a));
    if (r.result !== "accepted") failed++;
    times.push(r.ms);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99), failed };
}

const failures = (f: Partial<Record<LoginResult, number>>) =>
  Object.entries(f)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ");

/** Enroll every bench user in the fleet database (the store's own put(): secret encrypted, codes digested). */
async function enrollInDatabase(url: string, keyFile: string, users: Account[]): Promise<void> {
  const { openFleetStore } = (await import("../src/stores/pg/open.js")) as typeof import("../src/stores/pg/open.js");
  const store = await openFleetStore({ url, keyFile, host: "bench" });
  try {
    for (let i = 0; i < users.length; i += 8) await Promise.all(users.slice(i, i + 8).map((a) => store.put(a.name, documentOf(a.secret), "replace")));
  } finally {
    await store.close();
  }
}

type Figure = { readonly label: string } & ({ readonly load: LoadResult; readonly usage: Usage; readonly one: { p50: number; p99: number; failed: number } } | { readonly error: string });

/** b) and c) on one server: warm-up (every user once), the concurrent load, then one login at a time. */
async function measure(o: FleetBenchOptions, cluster: Cluster, label: string, port: number, secretFile: string, key: Buffer, users: Account[], extra: string[], n: number, children: ChildProcess[]) {
  if (extra.length === 0) {
    for (const a of users) {
      writeStateFile(a);
      a.counter = 1;
    }
  }
  const server = await startServer(o.cli, port, secretFile, extra);
  children.push(server.child);
  for (const a of users) {
    const r = await radiusLogin(port, key, a.name, nextCode(a));
    if (r.result !== "accepted") throw new Error(`warm-up login of ${a.name}: ${r.result}; server log: ${server.log().slice(-600)}`);
  }
  const before = snapshot(cluster, server.child.pid!);
  const load = await loadRun(port, key, users, CLIENTS, SECONDS);
  const usage = await usageSince(cluster, before, server.child.pid!, load.accepted + Object.values(load.failed).reduce((a, b) => a + b, 0));
  const one = await sequential(port, key, users, n);
  await stop(server.child);
  if (server.child.exitCode !== 0 && server.child.signalCode === null) throw new Error(`${label}: the server exited with ${server.child.exitCode}: ${server.log().slice(-500)}`);
  return { load, usage, one };
}

export async function fleetBench(o: FleetBenchOptions): Promise<void> {
  const title = "\n7. The fleet store: otpgate server on PostgreSQL against pgbench on the same cluster";
  if (process.geteuid?.() !== 0 || !existsSync(join(POSTGRES_BIN, "initdb")) || !existsSync(join(POSTGRES_BIN, "pgbench"))) {
    console.log(`${title}: skipped (needs root and the postgresql package: scripts/install-test-deps.sh)`);
    return;
  }
  const cleanups: (() => void | Promise<void>)[] = [];
  // startCluster registers its clean-up with the test context; here the bench runs it.
  const context = { after: (fn: () => void | Promise<void>) => void cleanups.push(fn) } as unknown as TestContext;
  const work = mkdtempSync(join(tmpdir(), "otpgate-bench-fleet-"));
  const prefix = `ofb${process.pid % 10000}u`;
  let users: Account[] = [];
  const children: ChildProcess[] = [];
  try {
    const cluster = await startCluster(context);
    const settings = cluster.psql("SHOW fsync; SHOW synchronous_commit; SHOW wal_sync_method; SHOW server_version;").trim().split("\n");
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    console.log(`${title}`);
    console.log(
      `   (PostgreSQL ${settings[3]} on a unix socket, fsync=${settings[0]}, synchronous_commit=${settings[1]}, wal_sync_method=${settings[2]}; ${cpus().length} CPUs shared by PostgreSQL, otpgate and the clients; load average before: ${load})`,
    );

    const rows = Math.max(USERS, 1000);
    createBenchTables(cluster, rows);
    const bench = await pgbench(cluster, "update.sql", UPDATE_SCRIPT(rows));
    const shaped = await pgbench(cluster, "login-shaped.sql", LOGIN_SHAPED_SCRIPT(rows), ["-M", "extended"]);
    const prepared = await pgbench(cluster, "login-shaped.sql", LOGIN_SHAPED_SCRIPT(rows), ["-M", "prepared"]);
    const tpsLine = (label: string, b: PgbenchResult) => console.log(`${pad(label)} ${Math.round(b.tps).toLocaleString("en-US").padStart(8)} tps   latency average ${b.latencyMs.toFixed(2)} ms`);
    console.log(`\n7a. pgbench on the same cluster, ${CLIENTS} clients, ${SECONDS} s, a random one of ${rows} rows per transaction`);
    tpsLine("single-row UPDATE: the durable-write limit of this database", bench);
    console.log(`    ${bench.command}`);
    console.log(`    update.sql: \\set id random(1, N) / UPDATE bench_row SET n = n + 1 WHERE id = :id;`);
    console.log(usageLine(bench.usage, "transaction"));
    tpsLine("a login's statements (for comparison, not the target's base)", shaped);
    console.log(`    ${shaped.command}`);
    console.log(`    login-shaped.sql: BEGIN / SELECT ... FOR UPDATE / SELECT the emergency-code digests / UPDATE / COMMIT (extended protocol, as node-postgres sends them)`);
    console.log(usageLine(shaped.usage, "transaction"));
    tpsLine("the same with prepared statements (-M prepared)", prepared);
    console.log(usageLine(prepared.usage, "transaction"));

    users = createUsers(prefix, USERS);
    const radiusSecret = randomBytes(18).toString("base64url");
    const secretFile = join(work, "radius.secret");
    writeFileSync(secretFile, radiusSecret + "\n", { mode: 0o600 });
    const key = Buffer.from(radiusSecret);
    const port = 44000 + (process.pid % 15000);

    // The database: schema and key file as an operator makes them, then every user enrolled.
    const keyFile = join(work, "db.key");
    let databaseReady: string | null = null;
    try {
      const migrate = spawnSync(process.execPath, [o.cli, "db", "migrate", "--store", cluster.url, "--db-key-file", keyFile, "--create-key-file"], { encoding: "utf8" });
      if (migrate.status !== 0) throw new Error(`otpgate db migrate failed (${migrate.status}): ${(migrate.stderr || migrate.stdout).trim().split("\n").slice(-2).join(" ")}`);
      await enrollInDatabase(cluster.url, keyFile, users);
    } catch (err) {
      databaseReady = (err as Error).message;
    }

    const n = Math.max(200, o.runs * 10);
    const figures: Figure[] = [];
    const stores = [
      { label: "otpgate server --store postgres://... (PostgreSQL)", extra: ["--store", cluster.url, "--db-key-file", keyFile], unavailable: databaseReady },
      { label: "otpgate server (file store: each user's ~/.google_authenticator)", extra: [], unavailable: null },
    ];
    for (const { label, extra, unavailable } of stores) {
      if (unavailable !== null) {
        figures.push({ label, error: unavailable });
        continue;
      }
      try {
        figures.push({ label, ...(await measure(o, cluster, label, port, secretFile, key, users, extra, n, children)) });
      } catch (err) {
        figures.push({ label, error: (err as Error).message });
      }
    }

    console.log(`\n7b. Accepted logins per second over RADIUS (PAP + Message-Authenticator, a fresh socket per login), ${CLIENTS} clients, ${SECONDS} s, ${USERS} users`);
    console.log(`    (HOTP: every login is the user's next valid code and every acceptance commits the moved counter; each answer's authenticators are checked)`);
    for (const f of figures) {
      if ("error" in f) {
        console.log(`${pad(f.label)} not measured: ${f.error}`);
        continue;
      }
      const bad = failures(f.load.failed);
      console.log(
        `${pad(f.label)} ${Math.round(f.load.perSecond).toLocaleString("en-US").padStart(8)} /s   under load p50 ${f.load.p50.toFixed(2)} ms, p99 ${f.load.p99.toFixed(2)} ms${bad ? `   (NOT counted: ${bad})` : ""}`,
      );
      console.log(usageLine(f.usage, "login"));
    }
    const [pg, file] = figures;
    if (pg && !("error" in pg)) {
      const ratio = pg.load.perSecond / bench.tps;
      console.log(`    ratio logins on PostgreSQL / pgbench single-row UPDATE: ${ratio.toFixed(2)}x (target >= 0.5x): ${ratio >= 0.5 ? "met" : "NOT met"}`);
      console.log(`    ratio logins on PostgreSQL / pgbench with a login's statements: ${(pg.load.perSecond / shaped.tps).toFixed(2)}x`);
      if (file && !("error" in file)) console.log(`    ratio logins on PostgreSQL / logins on the file store: ${(pg.load.perSecond / file.load.perSecond).toFixed(2)}x`);
    } else {
      console.log(`    ratio logins on PostgreSQL / pgbench single-row UPDATE: not measured`);
    }
    console.log(`\n7c. One login at a time (send of the Access-Request to the checked answer, a fresh socket each), ${n} logins, p50/p99`);
    for (const f of figures) {
      if ("error" in f) console.log(`${pad(f.label)} not measured`);
      else console.log(`${pad(f.label)} p50 ${f.one.p50.toFixed(2).padStart(6)} ms   p99 ${f.one.p99.toFixed(2).padStart(6)} ms${f.one.failed ? `   (${f.one.failed} not accepted)` : ""}`);
    }
  } catch (err) {
    console.log(`${title}: failed: ${(err as Error).message}`);
  } finally {
    for (const c of children) await stop(c);
    for (const a of users) spawnSync("userdel", ["-r", "-f", a.name], { stdio: "ignore" });
    for (const c of cleanups.reverse()) await c();
    rmSync(work, { recursive: true, force: true });
  }
}
