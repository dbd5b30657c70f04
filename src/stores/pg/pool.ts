// The fleet store's connection pool: one bounded node-postgres Pool per process, configured from
// the postgres:// URL (TLS with sslmode=verify-full and sslrootcert come from it) and the password
// file. Every wait is bounded: connecting (connectionTimeoutMillis), a statement on the server
// (statement_timeout) and on the client (query_timeout, for a server that stops answering), and a
// transaction left idle by a dead holder (idle_in_transaction_session_timeout: its row locks go).
// Every failure to reach or hear from the database becomes FleetUnavailable, with a message that
// never holds the password or a query's values. A client is always released (destroyed after an
// error), so the pool never runs dry; after an outage new connections are made as the database
// comes back, with nothing to restart.

import { existsSync } from "node:fs";
import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import { ConfigError } from "../../core/errors.js";
import { FleetUnavailable } from "../../ports/fleet.js";
import { readPrivateFile } from "../../platform/private-file.js";
import { DEFAULT_DB_PASSWORD_FILE, type FleetConnectOptions } from "./open.js";

export type PoolClient = pg.PoolClient;

/** SQLSTATE classes that mean "the database cannot serve us now", not "the query is wrong". */
const UNAVAILABLE_CLASSES = ["08", "53", "57", "58", "40", "25", "55", "28"];

/** Where the database is, for messages: host (or socket dir), port and database; never the password. */
export function describeUrl(url: string): string {
  try {
    const c = parseIntoClientConfig(url);
    return `${c.user ?? "?"}@${c.host ?? "localhost"}:${c.port ?? 5432}/${c.database ?? "?"}`;
  } catch {
    return "the fleet database";
  }
}

/** Turn any error of the pool or a query into FleetUnavailable (connection, timeout) or keep it. */
export function asFleetError(err: unknown, where: string): Error {
  if (err instanceof FleetUnavailable || err instanceof ConfigError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message.replace(/\s+/g, " ").slice(0, 200) : String(err);
  // Only the server's own errors carry a SQLSTATE; "EPIPE", "ECONNRESET" are the socket's (errno).
  const sqlState = err instanceof pg.DatabaseError && /^[0-9A-Z]{5}$/.test(code) ? code : null;
  if (sqlState === null || UNAVAILABLE_CLASSES.includes(sqlState.slice(0, 2))) {
    return new FleetUnavailable(`the fleet database ${where} is unavailable (${code ? `${code}: ` : ""}${message}): try again when it is back`);
  }
  return new FleetUnavailable(`the fleet database ${where} refused a query (${sqlState}: ${message}); is the schema right? run otpgate db migrate`);
}

function readPassword(options: FleetConnectOptions): string | undefined {
  const path = options.passwordFile ?? (existsSync(DEFAULT_DB_PASSWORD_FILE) ? DEFAULT_DB_PASSWORD_FILE : undefined);
  if (path === undefined) return undefined;
  const file = readPrivateFile(path, { what: "the database password", maxBytes: 4096, allowedMode: 0o600, follow: false, error: ConfigError });
  if (file === null) throw new ConfigError(`the database password file ${path} does not exist; create it (one line, mode 0600) or leave out --db-password-file`);
  const text = file.bytes.toString("utf8");
  file.bytes.fill(0);
  const line = text.split(/\r?\n/)[0] ?? "";
  if (line === "") throw new ConfigError(`${path} is empty: put the database password on its first line`);
  return line;
}

export interface FleetPool {
  readonly where: string;
  /** One query on a pooled connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** A client for a transaction; `done(error?)` must be called exactly once (an error destroys it). */
  connect(): Promise<{ client: pg.PoolClient; done: (error?: unknown) => void }>;
  /** BEGIN; fn; COMMIT (ROLLBACK on error); the client always released. */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

export function createPool(options: FleetConnectOptions, onError: (message: string) => void): FleetPool {
  const where = describeUrl(options.url);
  let base: pg.ClientConfig;
  try {
    base = parseIntoClientConfig(options.url);
  } catch (err) {
    throw new ConfigError(`--store: cannot use the URL (${(err as Error).message}); give postgres://USER@HOST:PORT/DATABASE[?sslmode=verify-full&sslrootcert=CA]`);
  }
  const statementMs = options.statementTimeoutMs ?? 5000;
  const password = readPassword(options);
  const pool = new pg.Pool({
    ...base,
    ...(password !== undefined ? { password } : {}),
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    statement_timeout: statementMs,
    query_timeout: statementMs + 1000,
    lock_timeout: statementMs,
    idle_in_transaction_session_timeout: Math.max(statementMs * 2, 10_000),
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: "otpgate",
  });
  // An idle client whose server went away: logged by the caller, never an unhandled 'error' event.
  pool.on("error", (err) => onError(asFleetError(err, where).message));
  const connect = async () => {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw asFleetError(err, where);
    }
    // A connection that dies while checked out must not crash the process either.
    const onClientError = () => {};
    client.on("error", onClientError);
    let released = false;
    return {
      client,
      done: (error?: unknown) => {
        if (released) return;
        released = true;
        client.off("error", onClientError);
        client.release(error instanceof Error ? error : error === undefined ? undefined : true);
      },
    };
  };
  return {
    where,
    async query<R extends pg.QueryResultRow>(sql: string, params: readonly unknown[] = []) {
      try {
        return (await pool.query<R>(sql, params as unknown[])).rows;
      } catch (err) {
        throw asFleetError(err, where);
      }
    },
    connect,
    async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
      const { client, done } = await connect();
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        done();
        return result;
      } catch (err) {
        // The session is dropped, not rolled back: ending it rolls back on the server, and a
        // ROLLBACK on a connection that stopped answering would wait again.
        done(err ?? true);
        throw asFleetError(err, where);
      }
    },
    end: () => pool.end(),
  };
}
