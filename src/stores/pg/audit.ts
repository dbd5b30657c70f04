// The audit queue of the fleet store: audit(record) only appends to a bounded in-memory queue (a
// login never waits for it and never sees its errors); the queue is written in batches (one
// multi-row INSERT every FLUSH_MS or as soon as BATCH rows are waiting). Records that do not fit
// (the database is down for long, or a flood) are dropped and counted, and the count is reported
// once per REPORT_MS, never per record.

import type { AuditQuery, AuditRecord } from "../../ports/fleet.js";
import type { FleetPool } from "./pool.js";

export const FLUSH_MS = 150;
export const BATCH = 200;
export const QUEUE_MAX = 20_000;
const REPORT_MS = 60_000;

export interface AuditLog {
  (level: "warning" | "err", message: string): void;
}

export class AuditQueue {
  private queue: AuditRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private dropped = 0;
  private failures = 0;
  private lastReport = 0;

  constructor(
    private readonly pool: FleetPool,
    private readonly log: AuditLog,
    private readonly nowMs: () => number = Date.now,
  ) {}

  add(record: AuditRecord): void {
    if (this.queue.length >= QUEUE_MAX) {
      this.dropped++;
      this.report();
      return;
    }
    this.queue.push(record);
    if (this.queue.length >= BATCH) void this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Write everything queued (in batches); resolves when done or when the database refused. */
  async flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.flushing) await this.flushing;
    if (this.queue.length === 0) return;
    this.flushing = this.writeAll();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  private async writeAll(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      try {
        await this.pool.query(
          `INSERT INTO otpgate_audit (at, user_name, host, service, client_address, result, reason, via)
           SELECT to_timestamp(t.at / 1000.0), t.u, t.h, t.s, t.c, t.r, t.re, t.v
           FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS t(at, u, h, s, c, r, re, v)`,
          [
            batch.map((r) => r.at),
            batch.map((r) => r.user),
            batch.map((r) => r.host),
            batch.map((r) => r.service),
            batch.map((r) => r.clientAddress),
            batch.map((r) => r.result),
            batch.map((r) => r.reason),
            batch.map((r) => r.via),
          ],
        );
      } catch {
        // Kept for the next flush as far as the bound allows; the rest counted as dropped.
        const room = QUEUE_MAX - this.queue.length;
        if (room < batch.length) this.dropped += batch.length - Math.max(0, room);
        this.queue.unshift(...batch.slice(0, Math.max(0, room)));
        this.failures++;
        this.report();
        if (this.timer === null) {
          this.timer = setTimeout(() => void this.flush(), FLUSH_MS * 10);
          this.timer.unref();
        }
        return;
      }
    }
  }

  private report(): void {
    const now = this.nowMs();
    if (now - this.lastReport < REPORT_MS) return;
    this.lastReport = now;
    if (this.dropped > 0) this.log("warning", `audit: ${this.dropped} records dropped (the queue of ${QUEUE_MAX} was full: the database is slow or down)`);
    else if (this.failures > 0) this.log("warning", `audit: the database did not take ${this.failures} batch(es) of audit records; they are kept and retried`);
    this.dropped = 0;
    this.failures = 0;
  }

  /** Stop the timer (close). */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

interface AuditRow {
  at: Date;
  user_name: string;
  host: string;
  service: string;
  client_address: string | null;
  result: AuditRecord["result"];
  reason: string;
  via: string | null;
}

export async function queryAudit(pool: FleetPool, query: AuditQuery): Promise<AuditRecord[]> {
  const rows = await pool.query<AuditRow>(
    `SELECT at, user_name, host, service, client_address, result, reason, via FROM otpgate_audit
     WHERE ($1::text IS NULL OR user_name = $1) AND ($2::float8 IS NULL OR at >= to_timestamp($2 / 1000.0))
     ORDER BY at DESC, id DESC LIMIT $3`,
    [query.user ?? null, query.since ?? null, query.limit ?? 1000],
  );
  return rows.map((r) => ({
    at: r.at.getTime(),
    user: r.user_name,
    host: r.host,
    service: r.service,
    clientAddress: r.client_address,
    result: r.result,
    reason: r.reason,
    via: r.via,
  }));
}

/** Delete audit records older than `days` days; returns how many. */
export async function pruneAudit(pool: FleetPool, days: number): Promise<number> {
  const rows = await pool.query<{ n: number }>("WITH d AS (DELETE FROM otpgate_audit WHERE at < now() - make_interval(days => $1) RETURNING 1) SELECT count(*)::int AS n FROM d", [days]);
  return rows[0]?.n ?? 0;
}
