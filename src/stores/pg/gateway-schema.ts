// The gateway's tables in the fleet database (issue 11): revocations (ended sessions, "log out
// everywhere") and bans, each row with the time it stops mattering so old rows are pruned. One
// schema migration, appended to the store's ordered migration list; every statement is idempotent
// (IF NOT EXISTS), so a gateway may also apply it itself on a database whose accounts schema is
// older (the gateway needs nothing else of the database).

export const GATEWAY_STATE_MIGRATION = {
  name: "gateway shared state: revocations and bans",
  sql: `
CREATE TABLE IF NOT EXISTS gateway_revocations (
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
CREATE INDEX IF NOT EXISTS gateway_revocations_recorded ON gateway_revocations (recorded_at);
CREATE INDEX IF NOT EXISTS gateway_revocations_until ON gateway_revocations (until_ms);
CREATE TABLE IF NOT EXISTS gateway_bans (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('pair', 'address')),
  -- pair: "user:NAME" or "invite:ID"; address: null
  subject text CHECK (subject IS NULL OR length(subject) BETWEEN 1 AND 320),
  address text NOT NULL CHECK (length(address) BETWEEN 1 AND 320),
  until_ms bigint NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS gateway_bans_recorded ON gateway_bans (recorded_at);
CREATE INDEX IF NOT EXISTS gateway_bans_until ON gateway_bans (until_ms);
`,
} as const;
