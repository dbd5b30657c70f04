// The fleet database's schema, as an ordered list of migrations (append new ones at the end; never
// edit one that has shipped). otpgate_schema holds the versions applied. `migrate` applies the
// missing ones in one transaction under an advisory lock (two hosts migrating at once: the second
// waits, then finds nothing to do); `checkSchema` refuses a schema newer than this otpgate knows,
// and an older one unless asked to migrate.

import { ConfigError } from "../../core/errors.js";
import type { FleetPool } from "./pool.js";

export interface Migration {
  readonly version: number;
  readonly about: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    about: "accounts, emergency-code digests, audit",
    sql: `
CREATE TABLE otpgate_accounts (
  user_name  text PRIMARY KEY,
  secret     bytea NOT NULL,
  key_id     text NOT NULL,
  options    text NOT NULL,
  revision   bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE otpgate_emergency_codes (
  id        bigserial PRIMARY KEY,
  user_name text NOT NULL REFERENCES otpgate_accounts (user_name) ON DELETE CASCADE ON UPDATE CASCADE,
  key_id    text NOT NULL,
  digest    bytea NOT NULL
);
CREATE INDEX otpgate_emergency_codes_user ON otpgate_emergency_codes (user_name);
CREATE INDEX otpgate_emergency_codes_key ON otpgate_emergency_codes (key_id);
CREATE INDEX otpgate_accounts_key ON otpgate_accounts (key_id);
CREATE TABLE otpgate_audit (
  id             bigserial PRIMARY KEY,
  at             timestamptz NOT NULL,
  user_name      text NOT NULL,
  host           text NOT NULL,
  service        text NOT NULL,
  client_address text,
  result         text NOT NULL,
  reason         text NOT NULL,
  via            text
);
CREATE INDEX otpgate_audit_at ON otpgate_audit (at);
CREATE INDEX otpgate_audit_user_at ON otpgate_audit (user_name, at);
`,
  },
];

/** The schema version this otpgate writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** pg_advisory_xact_lock key: "otpg" as a number, so unrelated applications do not collide. */
const MIGRATE_LOCK = 0x6f747067;

async function currentVersion(query: (sql: string) => Promise<{ v: number | null }[]>): Promise<number> {
  const [exists] = await query("SELECT CASE WHEN to_regclass('otpgate_schema') IS NULL THEN NULL ELSE 0 END AS v");
  if (exists?.v === null || exists === undefined) return 0;
  const [row] = await query("SELECT max(version)::int AS v FROM otpgate_schema");
  return row?.v ?? 0;
}

const tooNew = (found: number, where: string, known = SCHEMA_VERSION) =>
  new ConfigError(`the fleet database ${where} has schema version ${found}, newer than this otpgate knows (${known}): upgrade otpgate on this host; nothing was changed`);

/** Refuse a newer schema always, an older one unless migrating: returns the version found. */
export async function checkSchema(pool: FleetPool): Promise<number> {
  const version = await currentVersion((sql) => pool.query(sql));
  if (version > SCHEMA_VERSION) throw tooNew(version, pool.where);
  if (version < SCHEMA_VERSION) {
    throw new ConfigError(
      `the fleet database ${pool.where} has schema version ${version}, this otpgate needs ${SCHEMA_VERSION}: run otpgate db migrate --store URL (once, from any host), then start again`,
    );
  }
  return version;
}

/** Apply the missing migrations; returns the versions applied (empty: up to date). */
export async function migrate(pool: FleetPool, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return pool.transaction(async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATE_LOCK]);
    await client.query("CREATE TABLE IF NOT EXISTS otpgate_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), about text NOT NULL)");
    const version = await currentVersion(async (sql) => (await client.query(sql)).rows);
    const known = migrations[migrations.length - 1]?.version ?? 0;
    if (version > known) throw tooNew(version, pool.where, known);
    const applied: number[] = [];
    for (const m of migrations) {
      if (m.version <= version) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO otpgate_schema (version, about) VALUES ($1, $2)", [m.version, m.about]);
      applied.push(m.version);
    }
    return applied;
  });
}
