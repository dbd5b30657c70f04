// The gateway's tables in the fleet database (issue 11): revocations (ended sessions, "log out
// everywhere") and bans, each row with the time it stops mattering (until_ms) so old rows are
// pruned. One schema migration, appended to the store's ordered list (migrations.ts) and applied by
// otpgate db migrate; the gateway never creates tables (its database role needs only SELECT,
// INSERT and DELETE on these two).

import type { Migration } from "./migrations.js";

/** The tables the gateway uses; the gateway checks they exist (and says to run otpgate db migrate otherwise). */
export const GATEWAY_TABLES = ["otpgate_gateway_revocations", "otpgate_gateway_bans"] as const;

export const GATEWAY_STATE_MIGRATION: Migration = {
  version: 2,
  about: "gateway shared state: revocations and bans",
  sql: `
CREATE TABLE IF NOT EXISTS otpgate_gateway_revocations (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('session', 'user')),
  -- the session id, or the user name
  subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 320),
  -- session: when it would have expired anyway; user: sessions created at or before it end (Unix ms)
  at_ms bigint NOT NULL,
  -- the row is pruned after it (Unix ms)
  until_ms bigint NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS otpgate_gateway_revocations_recorded ON otpgate_gateway_revocations (recorded_at);
CREATE INDEX IF NOT EXISTS otpgate_gateway_revocations_until ON otpgate_gateway_revocations (until_ms);
CREATE TABLE IF NOT EXISTS otpgate_gateway_bans (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('pair', 'address')),
  -- pair: "user:NAME" or "invite:ID"; address: null
  subject text CHECK (subject IS NULL OR length(subject) BETWEEN 1 AND 320),
  address text NOT NULL CHECK (length(address) BETWEEN 1 AND 320),
  until_ms bigint NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS otpgate_gateway_bans_recorded ON otpgate_gateway_bans (recorded_at);
CREATE INDEX IF NOT EXISTS otpgate_gateway_bans_until ON otpgate_gateway_bans (until_ms);
`,
};
