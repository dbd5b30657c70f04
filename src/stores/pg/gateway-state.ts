// The gateway's shared state in PostgreSQL (ports/gateway-state.ts): connections of its own (the
// gateway needs no key file and no account of the fleet store), bounded waits, and every failure
// turned into GatewayStateUnavailable with a message that carries no password. node-postgres is
// imported here, and this module is imported only when the configuration has `store:`.
// Two pools of one connection each (RT-B F1): reads (the revocation poll) never wait behind writes
// (bans, logouts, pruning), however many writes there are; bans are written many rows per statement.

import { ConfigError } from "../../core/errors.js";
import type { Ban, GatewayStateStore, Revocation, SharedChanges } from "../../ports/gateway-state.js";
import { GatewayStateRefused, GatewayStateUnavailable, LONGEST_SESSION_MS, MAX_BAN_BATCH } from "../../ports/gateway-state.js";
import { GATEWAY_STATE_MIGRATION, GATEWAY_TABLES } from "./gateway-schema.js";

export interface GatewayStateOptions {
  /** postgres://USER@HOST:PORT/DB[?sslmode=verify-full&sslrootcert=CA] (no password in it). */
  readonly url: string;
  /** The database password (stores/store-password.ts reads it from store_password_file); undefined: none (peer or trust auth, or a client certificate). */
  readonly password: string | undefined;
  /** Connect and statement timeouts (default 3000 ms each). */
  readonly timeoutMs?: number;
}

/** How far back each poll looks again (ms): a write whose transaction committed after the previous poll began is still seen. */
export const POLL_OVERLAP_MS = 30_000;

/** The URL as it may be shown: never a password (one in the URL is refused by the configuration anyway). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "the configured store";
  }
}

interface Row {
  readonly now_ms: string;
  readonly revocations: { kind: string; subject: string; at_ms: string | number; until_ms: string | number }[];
  readonly bans: { kind: string; subject: string | null; address: string; until_ms: string | number }[];
}

/**
 * Opens the pools (no connection yet: the database may be down at the start; the gateway then
 * refuses sessions until it answers). Whether the gateway's tables exist (otpgate db migrate) is
 * checked by the first query that reaches the database. Throws ConfigError for a URL that cannot be used.
 */
export async function openGatewayStateStore(options: GatewayStateOptions): Promise<GatewayStateStore> {
  const where = shownUrl(options.url);
  const password = options.password;
  const { default: pg } = await import("pg");
  const { parseIntoClientConfig } = await import("pg-connection-string");
  let base: ReturnType<typeof parseIntoClientConfig>;
  try {
    base = parseIntoClientConfig(options.url);
  } catch (err) {
    throw new ConfigError(`store: ${where} cannot be used (${(err as Error).message}); give postgres://USER@HOST:PORT/DATABASE`);
  }
  const timeoutMs = options.timeoutMs ?? 3000;
  // node-postgres: a connection string without a password would override `password`: spread, then set it.
  const newPool = (role: string) => {
    const pool = new pg.Pool({
      ...base,
      ...(password === undefined ? {} : { password }),
      max: 1,
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs + 1000,
      idleTimeoutMillis: 30_000,
      application_name: `otpgate-gateway-${role}`,
    });
    // An idle connection the server drops (restart, failover) must not crash the gateway: the next query reconnects.
    pool.on("error", () => undefined);
    return pool;
  };
  // The poll's reads have a connection of their own: no number of writes waiting can delay them (RT-B F1).
  const readPool = newPool("read");
  const writePool = newPool("write");
  type Pool = typeof readPool;
  const unavailable = (err: unknown): Error => {
    const message = (err as Error).message.split("\n")[0];
    // SQLSTATE class 42 (privilege, undefined object) and 23 (constraint): the database answered; retrying will not help.
    const code = typeof (err as { code?: unknown }).code === "string" ? (err as { code: string }).code : "";
    if (code.startsWith("42")) {
      return new GatewayStateRefused(
        `the shared state in ${where} refused the gateway's role (${message}, SQLSTATE ${code}): a configuration error; grant SELECT, INSERT, DELETE ON ${GATEWAY_TABLES.join(", ")} and USAGE on their id sequences to that role`,
      );
    }
    if (code.startsWith("23")) return new GatewayStateRefused(`the shared state in ${where} refused a row (${message}, SQLSTATE ${code}): check that otpgate db migrate ran with this otpgate version`);
    return new GatewayStateUnavailable(`the shared state in ${where} cannot be reached (${message})`);
  };
  const query = async <T extends object>(sql: string, values: unknown[] = [], pool: Pool = readPool): Promise<T[]> => {
    try {
      return (await pool.query<T>(sql, values)).rows;
    } catch (err) {
      throw unavailable(err);
    }
  };
  let schemaReady = false;
  /** The gateway's tables exist (checked until they do; the gateway never creates them). */
  const ensureSchema = async (pool: Pool = readPool) => {
    if (schemaReady) return;
    const [row] = await query<{ missing: string[] }>("SELECT array_agg(t) FILTER (WHERE to_regclass(t) IS NULL) AS missing FROM unnest($1::text[]) AS t", [GATEWAY_TABLES], pool);
    if (row?.missing?.length) {
      throw new GatewayStateUnavailable(
        `the fleet database ${where} has no ${row.missing.join(" or ")} (schema version ${GATEWAY_STATE_MIGRATION.version} or later is needed): run otpgate db migrate --store URL once, from any host`,
      );
    }
    schemaReady = true;
  };
  const write = async (sql: string, values: unknown[]) => {
    await ensureSchema(writePool);
    await query(sql, values, writePool);
  };

  const n = (v: string | number) => Number(v);
  return {
    where,
    async revoke(r: Revocation) {
      if (r.kind === "session") await write("INSERT INTO otpgate_gateway_revocations (kind, subject, at_ms, until_ms) VALUES ('session', $1, $2, $2)", [r.sid, r.until]);
      // Kept as long as any session created before it could live, whatever the caller's own session.absolute (RT-B F4).
      else await write("INSERT INTO otpgate_gateway_revocations (kind, subject, at_ms, until_ms) VALUES ('user', $1, $2, $3)", [r.user, r.at, Math.max(r.until, r.at + LONGEST_SESSION_MS)]);
    },
    async bans(bans: readonly Ban[]) {
      if (!bans.length) return;
      if (bans.length > MAX_BAN_BATCH) throw new RangeError(`at most ${MAX_BAN_BATCH} bans per statement, not ${bans.length}`);
      // One statement for all of them (four array parameters, whatever their number).
      await write("INSERT INTO otpgate_gateway_bans (kind, subject, address, until_ms) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])", [
        bans.map((b) => b.kind),
        bans.map((b) => (b.kind === "pair" ? b.subject : null)),
        bans.map((b) => b.address),
        bans.map((b) => b.until),
      ]);
    },
    async changes(cursor: number | null, now: number): Promise<SharedChanges> {
      // One round trip; the cursor is the database's clock at the start of the statement.
      const since = cursor === null ? null : cursor - POLL_OVERLAP_MS;
      await ensureSchema();
      const [row] = await query<Row>(
        `SELECT (extract(epoch FROM now()) * 1000)::bigint AS now_ms,
           (SELECT coalesce(json_agg(json_build_object('kind', kind, 'subject', subject, 'at_ms', at_ms, 'until_ms', until_ms)), '[]')
              FROM otpgate_gateway_revocations WHERE until_ms > $2 AND ($1::bigint IS NULL OR recorded_at > to_timestamp($1::bigint / 1000.0))) AS revocations,
           (SELECT coalesce(json_agg(json_build_object('kind', kind, 'subject', subject, 'address', address, 'until_ms', until_ms)), '[]')
              FROM otpgate_gateway_bans WHERE until_ms > $2 AND ($1::bigint IS NULL OR recorded_at > to_timestamp($1::bigint / 1000.0))) AS bans`,
        [since, now],
      );
      if (!row) throw new GatewayStateUnavailable(`the shared state in ${where} gave no answer`);
      const revocations: Revocation[] = [];
      for (const r of row.revocations) {
        if (r.kind === "session") revocations.push({ kind: "session", sid: r.subject, until: n(r.until_ms) });
        else if (r.kind === "user") revocations.push({ kind: "user", user: r.subject, at: n(r.at_ms), until: n(r.until_ms) });
      }
      const bans: Ban[] = [];
      for (const b of row.bans) {
        if (b.kind === "pair" && b.subject !== null) bans.push({ kind: "pair", subject: b.subject, address: b.address, until: n(b.until_ms) });
        else if (b.kind === "address") bans.push({ kind: "address", address: b.address, until: n(b.until_ms) });
      }
      return { revocations, bans, cursor: n(row.now_ms) };
    },
    async prune(now: number) {
      await ensureSchema(writePool);
      await query("DELETE FROM otpgate_gateway_revocations WHERE until_ms <= $1", [now], writePool);
      await query("DELETE FROM otpgate_gateway_bans WHERE until_ms <= $1", [now], writePool);
    },
    async missingPrivileges(): Promise<readonly string[]> {
      await ensureSchema();
      const rows = await query<{ missing: string }>(
        `SELECT p || ' ON ' || t AS missing FROM unnest($1::text[]) AS t, unnest(ARRAY['SELECT', 'INSERT', 'DELETE']) AS p WHERE NOT has_table_privilege(t, p)
         UNION ALL
         SELECT 'USAGE ON SEQUENCE ' || s FROM unnest($1::text[]) AS t, LATERAL (SELECT t || '_id_seq' AS s) q WHERE NOT has_sequence_privilege(s, 'USAGE')`,
        [GATEWAY_TABLES],
      );
      return rows.map((r) => r.missing);
    },
    close: async () => void (await Promise.all([readPool.end().catch(() => undefined), writePool.end().catch(() => undefined)])),
  };
}
