// The FleetStore of ports/fleet.ts on PostgreSQL: accounts (secret sealed, codes digested, option
// lines as text), the audit queue, retention. Built by connect.ts (openFleetStore).

import { ConfigError } from "../../core/errors.js";
import { formatScratchCode } from "../../formats/ga-document.js";
import type { AuditQuery, AuditRecord, FleetAccountSummary, FleetStore, PutMode } from "../../ports/fleet.js";
import type { AccountStore } from "../../ports/index.js";
import { PgAccountStore } from "./account.js";
import { AuditQueue, pruneAudit, queryAudit, type AuditLog } from "./audit.js";
import { codeDigest, openSecret, sealSecret } from "./crypto.js";
import { checkStoredOptions, renderDocument, splitDocument } from "./document.js";
import type { FleetKeys } from "./key-file.js";
import type { KeyRing } from "./key-ring.js";
import type { FleetPool, PoolClient } from "./pool.js";
import { UserGate } from "./user-gate.js";

const HOUR_MS = 3_600_000;

export interface PgFleetStoreOptions {
  readonly pool: FleetPool;
  /** null: a process without the key file (no secrets: the gateway's revocations and bans). */
  readonly keys: KeyRing | null;
  readonly keyFile: string | null;
  readonly auditRetentionDays: number;
  readonly firstAuditPruneAfterMs: number;
  readonly log: AuditLog;
  /** This host's name for audit records (FleetConnectOptions.host, default os.hostname()). */
  readonly host: string;
  /** How long a decision waits for the same user's previous one in this process (ms). */
  readonly gateWaitMs: number;
}

export class PgFleetStore implements FleetStore {
  readonly pool: FleetPool;
  /** This host's name for audit records (the caller puts it in AuditRecord.host). */
  readonly host: string;
  private readonly audits: AuditQueue;
  private readonly gate: UserGate;

  constructor(private readonly options: PgFleetStoreOptions) {
    this.pool = options.pool;
    this.host = options.host;
    this.audits = new AuditQueue(options.pool, options.log);
    this.gate = new UserGate(options.gateWaitMs);
    // Retention: a resident process prunes hourly (the first time after firstAuditPruneAfterMs,
    // default a minute, so short-lived admin commands never do; the server starts it after 5 s);
    // `otpgate db audit --prune` does it at once.
    this.schedulePrune(options.firstAuditPruneAfterMs);
  }

  private pruneTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private schedulePrune(inMs: number): void {
    if (this.options.auditRetentionDays <= 0 || this.closed) return;
    this.pruneTimer = setTimeout(() => {
      this.pruneAudit()
        .catch((err: Error) => this.options.log("warning", `audit retention: ${err.message}`))
        .finally(() => this.schedulePrune(HOUR_MS));
    }, inMs);
    this.pruneTimer.unref();
  }

  /**
   * The keys, or a clear refusal in a process that has none. When a key id in `needed` is missing,
   * the key file is re-read first if it changed (key-ring.ts: a rotation while this process runs).
   */
  keys(needed: readonly string[] = []): FleetKeys {
    if (this.options.keys === null) throw new ConfigError("this process was opened without the fleet key file, so it cannot read or write secrets; pass --db-key-file");
    return this.options.keys.get(needed);
  }

  /** Re-read the key file now (SIGHUP); the problem when it cannot be used (the old keys stay), or null. */
  reloadKeys(): string | null {
    if (this.options.keys === null) return null;
    this.options.keys.refresh(true);
    return this.options.keys.problem;
  }

  account(user: string, entry?: string): AccountStore {
    return new PgAccountStore(this.pool, (needed) => this.keys(needed), user, entry, this.gate);
  }

  async put(user: string, document: string, mode: PutMode): Promise<"written" | "exists"> {
    const keys = this.keys();
    const split = splitDocument(document);
    const { keyId, sealed } = sealSecret(keys, user, split.secretLine);
    return this.pool.transaction(async (client) => {
      const conflict =
        mode === "create" ? "DO NOTHING" : "DO UPDATE SET secret = EXCLUDED.secret, key_id = EXCLUDED.key_id, options = EXCLUDED.options, revision = otpgate_accounts.revision + 1, updated_at = now()";
      const inserted = await client.query(`INSERT INTO otpgate_accounts (user_name, secret, key_id, options) VALUES ($1, $2, $3, $4) ON CONFLICT (user_name) ${conflict}`, [
        user,
        sealed,
        keyId,
        split.options,
      ]);
      if (inserted.rowCount === 0) return "exists";
      await this.writeCodes(client, user, split.codes, keys);
      return "written";
    });
  }

  private async writeCodes(client: PoolClient, user: string, codes: readonly string[], keys: FleetKeys): Promise<void> {
    await client.query("DELETE FROM otpgate_emergency_codes WHERE user_name = $1", [user]);
    if (codes.length === 0) return;
    const keyId = keys.current;
    await client.query("INSERT INTO otpgate_emergency_codes (user_name, key_id, digest) SELECT $1, $2, d FROM unnest($3::bytea[]) WITH ORDINALITY AS t(d, n) ORDER BY n", [
      user,
      keyId,
      codes.map((c) => codeDigest(keys, keyId, user, c)),
    ]);
  }

  async document(user: string): Promise<{ readonly text: string; readonly scratchCodesOmitted: number } | null> {
    const rows = await this.pool.query<{ secret: Buffer; key_id: string; options: string; codes: number }>(
      "SELECT secret, key_id, options, (SELECT count(*)::int FROM otpgate_emergency_codes c WHERE c.user_name = a.user_name) AS codes FROM otpgate_accounts a WHERE user_name = $1",
      [user],
    );
    const row = rows[0];
    if (row === undefined) return null;
    checkStoredOptions(user, row.options);
    const plain = openSecret(this.keys([row.key_id]), user, row.key_id, row.secret);
    const secret = plain.toString("latin1");
    plain.fill(0);
    return { text: renderDocument(secret, row.options, []), scratchCodesOmitted: row.codes };
  }

  async replaceScratchCodes(user: string, codes: readonly number[]): Promise<boolean> {
    const keys = this.keys();
    return this.pool.transaction(async (client) => {
      const found = await client.query("SELECT 1 FROM otpgate_accounts WHERE user_name = $1 FOR UPDATE", [user]);
      if (found.rowCount === 0) return false;
      await this.writeCodes(client, user, codes.map(formatScratchCode), keys);
      await client.query("UPDATE otpgate_accounts SET revision = revision + 1, updated_at = now() WHERE user_name = $1", [user]);
      return true;
    });
  }

  async remove(user: string): Promise<boolean> {
    const rows = await this.pool.query("DELETE FROM otpgate_accounts WHERE user_name = $1 RETURNING 1", [user]);
    return rows.length > 0;
  }

  async list(user?: string): Promise<FleetAccountSummary[]> {
    const rows = await this.pool.query<{ user_name: string; options: string; codes: number; key_id: string; created_at: Date; updated_at: Date }>(
      `SELECT user_name, options, key_id, created_at, updated_at,
              (SELECT count(*)::int FROM otpgate_emergency_codes c WHERE c.user_name = a.user_name) AS codes
       FROM otpgate_accounts a WHERE ($1::text IS NULL OR user_name = $1) ORDER BY user_name`,
      [user ?? null],
    );
    return rows.map((r) => ({ user: r.user_name, options: r.options, scratchCodes: r.codes, keyId: r.key_id, createdAt: r.created_at.getTime(), updatedAt: r.updated_at.getTime() }));
  }

  audit(record: AuditRecord): void {
    try {
      this.audits.add(record);
    } catch {
      // never into a login
    }
  }

  /** Write the queued audit records now (tests, close). */
  flushAudit(): Promise<void> {
    return this.audits.flush();
  }

  auditRecords(query: AuditQuery): Promise<AuditRecord[]> {
    return queryAudit(this.pool, query);
  }

  /** Delete audit records older than the retention (or `days`); returns how many. */
  pruneAudit(days = this.options.auditRetentionDays): Promise<number> {
    return days > 0 ? pruneAudit(this.pool, days) : Promise.resolve(0);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pruneTimer !== null) clearTimeout(this.pruneTimer);
    this.audits.stop();
    try {
      await this.audits.flush();
    } finally {
      this.audits.stop();
      await this.pool.end();
    }
  }
}
