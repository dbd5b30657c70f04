// A throwaway PostgreSQL cluster for system tests (issue 11): initdb + pg_ctl as the unprivileged
// `postgres` account, data and unix socket in a fresh temp dir, stopped and removed after the test
// (also on failure). Optionally a TCP listener on 127.0.0.1 with password (scram) logins and TLS
// (a throwaway CA and a server certificate for "localhost", so sslmode=verify-full can be tested).
//
//   const pg = await startCluster(t);            // superuser "postgres", database "otpgate"
//   pg.url                                       // postgres://postgres@/otpgate?host=<socket dir>&port=<port>
//   pg.psql("SELECT 1")                          // runs psql as postgres, returns stdout
//   await pg.stop(); await pg.start();           // the same cluster down and up again
//   pg.dump()                                    // pg_dump --inserts of the database, as text

import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

const BIN = "/usr/lib/postgresql/15/bin";
export const POSTGRES_BIN = BIN;
const PG_UID = 101;
const PG_GID = 104;

export interface ClusterOptions {
  /** Also listen on 127.0.0.1:port (password logins, scram-sha-256). */
  readonly tcpPort?: number;
  /** With tcpPort: TLS on, a throwaway CA (caFile) and a server certificate for localhost/127.0.0.1. */
  readonly tls?: boolean;
  /** The login role otpgate uses over TCP (password `password`); created with CREATE on the database. */
  readonly role?: { readonly name: string; readonly password: string };
}

export interface Cluster {
  readonly dir: string;
  readonly socketDir: string;
  readonly port: number;
  /** Superuser URL over the unix socket (peer auth as root is mapped: trust for local sockets). */
  readonly url: string;
  /** The CA certificate file (with tls). */
  readonly caFile: string | null;
  psql(sql: string, database?: string): string;
  dump(database?: string): string;
  stop(mode?: "fast" | "immediate"): Promise<void>;
  start(): Promise<void>;
  readonly running: () => boolean;
}

function asPostgres(cmd: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { uid: PG_UID, gid: PG_GID, encoding: "utf8", input, env: { PATH: `${BIN}:/usr/bin:/bin`, LC_ALL: "C.UTF-8" }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function must(r: { status: number | null; stdout: string; stderr: string }, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

let nextPort = 25432 + (process.pid % 2000);

let template: string | null = null;

/** A data directory made by initdb once in this process (removed when the process exits). */
function templateCluster(): string {
  if (template !== null) return template;
  const dir = mkdtempSync(join(tmpdir(), "otpgate-pg-template-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  mkdirSync(data, { mode: 0o700 });
  chownSync(data, PG_UID, PG_GID);
  must(asPostgres(join(BIN, "initdb"), ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"]), "initdb");
  template = data;
  return data;
}

/** A fresh cluster, started; stopped and removed after `t`. */
export async function startCluster(t: TestContext, options: ClusterOptions = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-pg-"));
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  const socketDir = join(dir, "sock");
  mkdirSync(socketDir, { mode: 0o755 });
  chownSync(socketDir, PG_UID, PG_GID);
  const port = options.tcpPort ?? nextPort++;
  let running = false;
  const cleanup = () => {
    if (running) asPostgres(join(BIN, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]);
    running = false;
    rmSync(dir, { recursive: true, force: true });
  };
  t.after(cleanup);
  // initdb once per test process, then a copy per cluster (cp -a keeps owner and modes): ~0.2 s
  // instead of ~1.5-4 s per cluster, which the fleet tests start dozens of.
  must(spawnSync("/bin/cp", ["-a", templateCluster(), data], { encoding: "utf8" }) as never, "cp -a of the initdb template");
  const conf: string[] = [`port = ${port}`, `unix_socket_directories = '${socketDir}'`, `listen_addresses = '${options.tcpPort ? "127.0.0.1" : ""}'`, "fsync = on", "max_connections = 100"];
  let caFile: string | null = null;
  if (options.tls) {
    const certs = join(dir, "certs");
    mkdirSync(certs);
    const ssl = (args: string[]) => must(spawnSync("/usr/bin/openssl", args, { encoding: "utf8", cwd: certs }) as never, `openssl ${args[0]}`);
    ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=otpgate test CA", "-keyout", "ca.key", "-out", "ca.crt"]);
    ssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"]);
    writeFileSync(join(certs, "san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    ssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt"]);
    for (const f of ["server.key", "server.crt"]) {
      chownSync(join(certs, f), PG_UID, PG_GID);
      chmodSync(join(certs, f), 0o600);
    }
    chmodSync(join(certs, "ca.crt"), 0o644);
    conf.push("ssl = on", `ssl_cert_file = '${join(certs, "server.crt")}'`, `ssl_key_file = '${join(certs, "server.key")}'`);
    caFile = join(certs, "ca.crt");
  }
  writeFileSync(join(data, "postgresql.auto.conf"), conf.join("\n") + "\n");
  chownSync(join(data, "postgresql.auto.conf"), PG_UID, PG_GID);
  const hba = ["local all all trust", `${options.tls ? "hostssl" : "host"} all all 127.0.0.1/32 scram-sha-256`];
  writeFileSync(join(data, "pg_hba.conf"), hba.join("\n") + "\n");
  chownSync(join(data, "pg_hba.conf"), PG_UID, PG_GID);

  const start = async () => {
    must(asPostgres(join(BIN, "pg_ctl"), ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", "start"]), "pg_ctl start");
    running = true;
  };
  const stop = async (mode: "fast" | "immediate" = "fast") => {
    must(asPostgres(join(BIN, "pg_ctl"), ["-D", data, "-m", mode, "-w", "stop"]), "pg_ctl stop");
    running = false;
  };
  chownSync(dir, PG_UID, PG_GID); // the server log
  await start();
  const psqlArgs = (database: string) => ["-h", socketDir, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt"];
  const psql = (sql: string, database = "otpgate") => must(asPostgres("/usr/bin/psql", [...psqlArgs(database), "-f", "-"], sql), "psql");
  psql("CREATE DATABASE otpgate", "postgres");
  if (options.role) {
    psql(
      `CREATE ROLE "${options.role.name}" LOGIN PASSWORD '${options.role.password.replace(/'/g, "''")}'; GRANT ALL ON DATABASE otpgate TO "${options.role.name}"; GRANT ALL ON SCHEMA public TO "${options.role.name}";`,
    );
  }
  return {
    dir,
    socketDir,
    port,
    url: `postgres://postgres@/otpgate?host=${encodeURIComponent(socketDir)}&port=${port}`,
    caFile,
    psql,
    dump: (database = "otpgate") => must(asPostgres("/usr/bin/pg_dump", ["-h", socketDir, "-p", String(port), "-U", "postgres", "--inserts", database]), "pg_dump"),
    stop,
    start,
    running: () => running && existsSync(join(data, "postmaster.pid")),
  };
}
