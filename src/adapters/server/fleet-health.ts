// The fleet database as `otpgate server` sees it (issue 11): every operation on the store is
// watched, so an outage gives ONE clear log line when it starts (not one per refused login) and
// one when the database answers again, with how long it lasted and how many operations failed.
// Closed by default: while the database cannot be reached every login is refused (the decision
// is an error with reason "unavailable"); nothing here retries or caches a decision. node-postgres
// reconnects by itself: the next operation after the database is back opens a new connection.

import type { LogValue } from "../../core/log-fields.js";
import { FleetUnavailable, type FleetStore } from "../../ports/fleet.js";
import type { AccountStore, LockedAccount } from "../../ports/index.js";

export type HealthLog = (level: "notice" | "err", kind: string, fields: Readonly<Record<string, LogValue>>) => void;

/** Up/down of the fleet database, from the outcome of each operation. */
export class FleetHealth {
  private downSince: number | null = null;
  private failures = 0;

  constructor(
    private readonly nowMs: () => number,
    private readonly log: HealthLog,
  ) {}

  get down(): boolean {
    return this.downSince !== null;
  }

  ok(): void {
    if (this.downSince === null) return;
    const seconds = Math.round((this.nowMs() - this.downSince) / 1000);
    this.log("notice", "fleet:back", {
      event: "fleet-back",
      downSeconds: seconds,
      failed: this.failures,
      message: `the fleet database answers again after ${seconds} s; logins are decided again (${this.failures} operations failed meanwhile)`,
    });
    this.downSince = null;
    this.failures = 0;
  }

  failed(err: FleetUnavailable): void {
    // A key id this host's key file lacks, or a row changed outside otpgate, is not an outage (the
    // database answered): say what it is, every time (stores/pg/errors.ts; matched by name, so the
    // server does not load the store's modules).
    if (err.name === "FleetKeyMissing" || err.name === "FleetRowInvalid") {
      const keyFile = err.name === "FleetKeyMissing";
      this.log("err", keyFile ? "fleet:key-file" : "fleet:row-invalid", { event: keyFile ? "fleet-key-file" : "fleet-row-invalid", message: err.message });
      return;
    }
    this.failures++;
    if (this.downSince !== null) return;
    this.downSince = this.nowMs();
    this.log("err", "fleet:unavailable", {
      event: "fleet-unavailable",
      problem: err.message,
      message: "the fleet database cannot be reached or answers too late: every login is refused (closed by default) until it is back; otpgate server keeps trying on each login, no restart needed",
    });
  }

  /** Run one operation on the database, recording its outcome; other errors pass through unrecorded. */
  async watch<T>(op: () => Promise<T>): Promise<T> {
    try {
      const result = await op();
      this.ok();
      return result;
    } catch (err) {
      if (err instanceof FleetUnavailable) this.failed(err);
      throw err;
    }
  }
}

/** The store with every database operation watched by `health` (audit() queues and never throws: not watched). */
export function watchedFleet(fleet: FleetStore, health: FleetHealth): FleetStore {
  const w = <T>(op: () => Promise<T>) => health.watch(op);
  return {
    account: (user, entry) => watchedAccount(fleet.account(user, entry), health),
    put: (user, document, mode) => w(() => fleet.put(user, document, mode)),
    document: (user) => w(() => fleet.document(user)),
    replaceScratchCodes: (user, codes) => w(() => fleet.replaceScratchCodes(user, codes)),
    remove: (user) => w(() => fleet.remove(user)),
    list: (user) => w(() => fleet.list(user)),
    audit: (record) => fleet.audit(record),
    auditRecords: (query) => w(() => fleet.auditRecords(query)),
    close: () => fleet.close(),
  };
}

function watchedAccount(store: AccountStore, health: FleetHealth): AccountStore & { readonly path?: string } {
  return {
    acquire: () =>
      health.watch(async () => {
        const locked = await store.acquire();
        if (locked === null) return null;
        const l: LockedAccount = {
          text: locked.text,
          version: locked.version,
          location: locked.location,
          commit: (text) => health.watch(() => locked.commit(text)),
          release: () => health.watch(() => locked.release()),
        };
        return l;
      }),
  };
}
