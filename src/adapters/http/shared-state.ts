// Gateway instances that agree (issue 11, `store:` in the configuration): the ended sessions and
// the regulation's bans of every instance, through the shared state (ports/gateway-state.ts).
//   - Writes: a logout or "log out everywhere" holds here at once and is first written to the
//     journal (stores/gateway-journal.ts, in the gateway's state directory) and then to the
//     database; it leaves the journal once the database has it. A restart reloads the journal (the
//     logout still holds here) and the first poll counts only after those are in the database. A
//     ban is written at once; one that cannot be written (database down) is queued in memory (it
//     holds here, in the regulator). What waits is written again before each poll.
//   - A write the database refuses (a missing privilege, SQLSTATE class 42; a constraint, class 23)
//     is a configuration error: logged as such, tried again every 30 s; it never stops the reads.
//     Such a logout holds here (journaled); such a ban holds here only. Nothing is let in by it.
//   - Reads: every POLL_MS (1 s) the changes since the previous poll; so a logout or ban on one
//     instance holds on the others within about a second (the documented delay).
//   - Fail closed: revocations that cannot be checked cannot be trusted. When the last successful
//     poll is older than STALE_AFTER_MS (10 s), every session cookie is refused and no session is
//     issued (the login page says the service is unavailable; nothing is counted); one log line when
//     it starts and one when the database answers again. Bans keep working from memory meanwhile.
//     Nothing needs a restart: the next successful poll restores service.
//   - Nothing waiting is dropped silently: beyond the bounds, and at close, the count is logged.

import type { Regulator } from "../../core/web/index.js";
import type { Clock } from "../../ports/index.js";
import { GatewayStateRefused, type Ban, type GatewayStateStore, type Revocation } from "../../ports/gateway-state.js";
import { MAX_JOURNAL, type RevocationJournal } from "../../stores/gateway-journal.js";
import { mergeSessionsStates, pruneSessionsState, type SessionsFileRead, type SessionsState, type SessionsStore } from "../../stores/gateway-sessions.js";
import type { GatewayLog } from "./gateway-types.js";

export const POLL_MS = 1000;
export const STALE_AFTER_MS = 10_000;
const PRUNE_EVERY_MS = 10 * 60_000;
const MAX_PENDING = 10_000;
/** After the database refused a write (configuration error), writes are tried again after this (ms). */
const RETRY_REFUSED_MS = 30_000;

/** What the session service needs of the shared state (sessions.ts). */
export interface SharedSessions {
  readonly store: SessionsStore;
  /** Called after decisions of other instances arrived. */
  onChange(listener: () => void): void;
  /** Revocations can be trusted now (the database answered within STALE_AFTER_MS); false: fail closed. */
  available(now: number): boolean;
  /** Why not, for the log and the login page's error (no secret in it). */
  unavailableMessage(): string;
}

export interface SharedState extends SharedSessions {
  /** For `new Regulator(policy, shared.publishBan)`. */
  readonly publishBan: (ban: Ban) => void;
  /** Bans from other instances go to this regulator. */
  attachRegulator(regulator: Regulator): void;
  /** One poll now (the first one at start; tests). Never throws. */
  sync(): Promise<boolean>;
  /** Poll every `pollMs` from now on. */
  start(): void;
  /** Stop polling, try to write what is queued once, close the pool. */
  close(): Promise<void>;
}

export interface SharedStateOptions {
  readonly store: GatewayStateStore;
  readonly clock: Clock;
  readonly log: GatewayLog;
  /** session.absolute: how long a "log out everywhere" must be kept. */
  readonly absoluteMs: number;
  readonly pollMs?: number;
  readonly staleAfterMs?: number;
  /** Where revocations not yet in the database are kept across restarts (stores/gateway-journal.ts); none: memory only. */
  readonly journal?: RevocationJournal;
}

export function createSharedState(options: SharedStateOptions): SharedState {
  const { store, clock, log, absoluteMs, journal } = options;
  const pollMs = options.pollMs ?? POLL_MS;
  const staleAfterMs = options.staleAfterMs ?? STALE_AFTER_MS;
  let state: SessionsState = { revoked: new Map(), validAfter: new Map() };
  let cursor: number | null = null;
  let lastSync = -Infinity;
  let lastError = "it has not answered yet";
  let down = false;
  let lastPrune = -Infinity;
  let regulator: Regulator | null = null;
  const listeners: (() => void)[] = [];
  let timer: NodeJS.Timeout | null = null;
  let polling: Promise<boolean> | null = null;
  /** Revocations not yet in the database: also in `journal` (durable), applied here meanwhile. */
  let journaled: Revocation[] = [];
  /** Bans not yet in the database (memory only: a ban ends by itself; they hold here in the regulator). */
  const pendingBans: Ban[] = [];
  /** Until when writes are not retried after the database refused one (a configuration error). */
  let refusedUntil = -Infinity;
  let lastRefused = "";

  const absorb = (revocations: readonly Revocation[]) => {
    const revoked = new Map<string, number>();
    const validAfter = new Map<string, number>();
    for (const r of revocations) {
      if (r.kind === "session") revoked.set(r.sid, Math.max(r.until, revoked.get(r.sid) ?? 0));
      else validAfter.set(r.user, Math.max(r.at, validAfter.get(r.user) ?? 0));
    }
    state = pruneSessionsState(mergeSessionsStates(state, { revoked, validAfter }), clock.nowMs());
  };

  /** Write `journaled` to the journal file; what has expired is left out, and a drop beyond the bound is logged. */
  const saveJournal = () => {
    const now = clock.nowMs();
    journaled = journaled.filter((r) => r.until > now);
    if (journaled.length > MAX_JOURNAL) {
      const dropped = journaled.length - MAX_JOURNAL;
      journaled = journaled.slice(dropped);
      log({
        event: "error",
        where: "shared-state",
        message: `${dropped} revocation(s) not yet in ${store.where} were dropped (more than ${MAX_JOURNAL} waiting); they hold on this instance until it restarts, not on the others`,
      });
    }
    if (!journal) return;
    try {
      journal.save(journaled);
    } catch (err) {
      log({ event: "error", where: "shared-state", message: `${(err as Error).message}; ${journaled.length} revocation(s) not yet in ${store.where} are kept in memory only` });
    }
  };

  // What an earlier run journaled holds here at once, and is written to the database before the first poll counts.
  if (journal) {
    journaled = journal.load();
    absorb(journaled);
    if (journaled.length)
      log({
        event: "shared-state",
        result: "journal",
        where: store.where,
        message: `${journaled.length} revocation(s) from ${journal.path} hold here and are written to the shared state when it answers`,
      });
  }
  let startupJournal = journaled.length > 0;

  const queueBan = (ban: Ban) => {
    if (pendingBans.length >= MAX_PENDING) {
      pendingBans.shift(); // it still holds here, in the regulator
      log({ event: "error", where: "shared-state", message: `1 ban not yet in ${store.where} was dropped from the queue (more than ${MAX_PENDING} waiting); it holds on this instance only` });
    }
    pendingBans.push(ban);
  };

  /** The database refused a write (privilege, constraint): a configuration error, logged when it changes; not retried for a while. */
  const refused = (err: GatewayStateRefused, what: string) => {
    refusedUntil = clock.nowMs() + RETRY_REFUSED_MS;
    const message = `${err.message}; ${what}`;
    if (message !== lastRefused) {
      lastRefused = message;
      log({ event: "error", where: "shared-state", result: "configuration", message });
    }
  };

  const failed = (err: unknown) => {
    lastError = (err as Error).message;
    if (!down && clock.nowMs() - lastSync > staleAfterMs) {
      down = true;
      log({ event: "error", where: "shared-state", message: `${lastError}; every session is refused until it answers (fail closed)` });
    }
  };

  /**
   * Write what waits. Never throws: an outage keeps it waiting; a refusal (configuration error)
   * keeps revocations journaled (they hold here) and leaves bans to this instance's regulator.
   */
  const flush = async (): Promise<void> => {
    if (clock.nowMs() < refusedUntil) return;
    let changed = false;
    try {
      for (const r of [...journaled]) {
        await store.revoke(r);
        journaled = journaled.filter((x) => x !== r);
        changed = true;
      }
      startupJournal = false;
      while (pendingBans.length) {
        const ban = pendingBans[0]!;
        try {
          await store.ban(ban);
        } catch (err) {
          if (!(err instanceof GatewayStateRefused)) throw err;
          refused(err, "bans this instance decides are kept here only (they still hold on this instance)");
        }
        pendingBans.shift();
      }
    } catch (err) {
      if (err instanceof GatewayStateRefused) {
        startupJournal = false;
        refused(err, `${journaled.length} logout(s) hold on this instance only (kept in ${journal?.path ?? "memory"}) until it is fixed`);
      } else lastError = (err as Error).message;
    } finally {
      if (changed) saveJournal();
    }
  };

  const poll = async (): Promise<boolean> => {
    // Writes first, but a write that fails never stops the reads (RT2 F2).
    await flush();
    try {
      const now = clock.nowMs();
      const changes = await store.changes(cursor, now);
      cursor = changes.cursor;
      absorb(changes.revocations);
      if (regulator) for (const ban of changes.bans) regulator.applyBan(ban, now);
      if (startupJournal) {
        // The database answers but the revocations of an earlier run are not in it yet: not healthy yet (the others would not know them).
        failed(new Error(`${journaled.length} revocation(s) from ${journal?.path ?? "the journal"} are not written yet (${lastError})`));
        return false;
      }
      lastSync = clock.nowMs();
      if (down) {
        down = false;
        log({ event: "shared-state", result: "reachable", where: store.where });
      }
      if (changes.revocations.length) for (const l of listeners) l();
      if (lastSync - lastPrune >= PRUNE_EVERY_MS) {
        lastPrune = lastSync;
        await store.prune(lastSync).catch(() => undefined);
      }
      return true;
    } catch (err) {
      failed(err);
      return false;
    }
  };

  const sync = (): Promise<boolean> => {
    // One poll at a time: a slow database is never asked twice at once.
    polling ??= poll().finally(() => (polling = null));
    return polling;
  };

  /** A revocation decided here: in force here at once, journaled (durable) before anything else, then written. */
  const revoke = (r: Revocation): SessionsState => {
    absorb([r]);
    journaled.push(r);
    saveJournal();
    void store.revoke(r).then(
      () => {
        journaled = journaled.filter((x) => x !== r);
        saveJournal();
      },
      (err: unknown) => {
        if (err instanceof GatewayStateRefused) refused(err, `the logout holds on this instance only (kept in ${journal?.path ?? "memory"}) until it is fixed`);
        else failed(err);
      },
    );
    return state;
  };

  const publishBan = (ban: Ban) => {
    void store.ban(ban).catch((err: unknown) => {
      if (err instanceof GatewayStateRefused) refused(err, "bans this instance decides are kept here only (they still hold on this instance)");
      else {
        queueBan(ban);
        failed(err);
      }
    });
  };

  const sessionsStore: SessionsStore = {
    read: (): SessionsFileRead => ({ state, version: null }),
    revokeUser: async (user, at) => revoke({ kind: "user", user, at, until: at + absoluteMs }),
    revokeSession: async (sid, until) => revoke({ kind: "session", sid, until }),
  };

  return {
    store: sessionsStore,
    onChange: (listener) => void listeners.push(listener),
    available: (now) => now - lastSync <= staleAfterMs,
    unavailableMessage: () =>
      `the gateway's shared state (${store.where}) has not answered ${lastSync === -Infinity ? "since the start" : `for ${Math.round((clock.nowMs() - lastSync) / 1000)} s`} (${lastError}); sessions cannot be checked`,
    publishBan,
    attachRegulator: (r) => void (regulator = r),
    sync,
    start() {
      if (timer) return;
      timer = setInterval(() => void sync(), pollMs);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      await polling;
      refusedUntil = -Infinity;
      await flush();
      if (journaled.length) {
        log({
          event: "error",
          where: "shared-state",
          message: `${journaled.length} revocation(s) not yet in ${store.where} ${journal ? `stay in ${journal.path} and are written at the next start` : "are lost (no journal)"}`,
        });
      }
      if (pendingBans.length) log({ event: "error", where: "shared-state", message: `${pendingBans.length} ban(s) not yet in ${store.where} are dropped (they end by themselves)` });
      await store.close();
    },
  };
}
