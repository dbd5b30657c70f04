// Gateway instances that agree (issue 11, `store:` in the configuration): the ended sessions and
// the regulation's bans of every instance, through the shared state (ports/gateway-state.ts).
//   - Writes: a logout or "log out everywhere" holds here at once and is first written to the
//     journal (stores/gateway-journal.ts, in the gateway's state directory) and then to the
//     database; it leaves the journal once the database has it. A restart reloads the journal (the
//     logout still holds here) and the first poll counts only after those are in the database.
//   - Bans (RT-B F1: anonymous clients with many addresses decide how many there are) are queued in
//     memory, one entry per key (the longest ban kept), at most MAX_PENDING_BANS (beyond it the
//     oldest is dropped: it still holds here, in the regulator; drops are counted and logged), and
//     written at most once per poll, up to MAX_BAN_BATCH in one statement.
//   - One writer: at most one write in flight (revocations first, then a batch of bans, then
//     pruning); the database's store reads on a connection of its own, so the reads never wait
//     behind writes, and a write that fails never makes a poll unhealthy.
//   - A write the database refuses (a missing privilege, SQLSTATE class 42; a constraint, class 23)
//     is a configuration error: logged as such, tried again every 30 s; it never stops the reads.
//     Such a logout holds here (journaled); such a ban holds here only. Nothing is let in by it.
//   - Reads: every POLL_MS (1 s) the changes since the previous poll; so a logout or ban on one
//     instance holds on the others within about a second or two (the documented delay). A poll
//     whose read succeeded is healthy, whatever happened to the writes.
//   - Fail closed: revocations that cannot be checked cannot be trusted. When the last successful
//     poll is older than STALE_AFTER_MS (10 s), every session cookie is refused and no session is
//     issued (the login page says the service is unavailable; nothing is counted); one log line when
//     it starts and one when the database answers again. Bans keep working from memory meanwhile.
//     Nothing needs a restart: the next successful poll restores service.
//   - Nothing waiting is dropped silently: beyond the bounds, and at close, the count is logged.

import type { Regulator } from "../../core/web/index.js";
import type { Clock } from "../../ports/index.js";
import { GatewayStateRefused, LONGEST_SESSION_MS, MAX_BAN_BATCH, type Ban, type GatewayStateStore, type Revocation } from "../../ports/gateway-state.js";
import { MAX_JOURNAL, type RevocationJournal } from "../../stores/gateway-journal.js";
import { mergeSessionsStates, pruneSessionsState, type SessionsFileRead, type SessionsState, type SessionsStore } from "../../stores/gateway-sessions.js";
import type { GatewayLog } from "./gateway-types.js";

export const POLL_MS = 1000;
export const STALE_AFTER_MS = 10_000;
const PRUNE_EVERY_MS = 10 * 60_000;
/** Most bans waiting to be written (one per key); beyond it the oldest is dropped (it holds here). */
export const MAX_PENDING_BANS = 10_000;
/** Dropped bans are logged at most this often (with their count). */
const DROP_LOG_EVERY_MS = 10_000;
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
  /** One poll now, and the write it starts (the first one at start; tests). Never throws. */
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
  /** session.absolute (unused: a "log out everywhere" is kept LONGEST_SESSION_MS, whatever this instance's is). */
  readonly absoluteMs?: number;
  readonly pollMs?: number;
  readonly staleAfterMs?: number;
  /** Where revocations not yet in the database are kept across restarts (stores/gateway-journal.ts); none: memory only. */
  readonly journal?: RevocationJournal;
}

export function createSharedState(options: SharedStateOptions): SharedState {
  const { store, clock, log, journal } = options;
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
  /**
   * Bans not yet in the database, one per key (memory only: a ban ends by itself; they hold here in
   * the regulator). In insertion order: the first is the oldest, dropped first when full.
   */
  const pendingBans = new Map<string, Ban>();
  let droppedBans = 0;
  let lastDropLog = -Infinity;
  /** The one write in flight, if any; `bansDue`: the next write may write a batch of bans (set by each poll). */
  let writing: Promise<void> | null = null;
  let writeAgain = false;
  let bansDue = false;
  /** The last write failed (the database cannot be reached); logged once while reads work, and once when writes work again. */
  let writeDown = false;
  let writeDownLogged = false;
  let lastWriteError = "not tried yet";
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

  const banKey = (b: Ban) => (b.kind === "pair" ? `p\u0000${b.subject}\u0000${b.address}` : `a\u0000${b.address}`);

  /** Queue a ban for the writer: coalesced per key (the longest kept), bounded (the oldest dropped, counted). */
  const queueBan = (ban: Ban) => {
    const key = banKey(ban);
    const queued = pendingBans.get(key);
    if (queued) {
      if (queued.until >= ban.until) return;
      pendingBans.delete(key); // the longer one goes to the end: it is the newest now
    } else if (pendingBans.size >= MAX_PENDING_BANS) {
      const oldest = pendingBans.keys().next().value as string;
      pendingBans.delete(oldest); // it still holds here, in the regulator
      droppedBans++;
    }
    pendingBans.set(key, ban);
  };

  /** Drops are logged with their count, at most every DROP_LOG_EVERY_MS. */
  const logDrops = () => {
    const now = clock.nowMs();
    if (droppedBans === 0 || now - lastDropLog < DROP_LOG_EVERY_MS) return;
    lastDropLog = now;
    log({
      event: "error",
      where: "shared-state",
      result: "bans-dropped",
      count: droppedBans,
      message: `${droppedBans} ban(s) were not written to ${store.where} (more than ${MAX_PENDING_BANS} waiting, the oldest dropped first); they hold on this instance only`,
    });
    droppedBans = 0;
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

  const writeFailed = (err: unknown) => {
    lastWriteError = (err as Error).message;
    writeDown = true;
  };

  /**
   * Write what waits, once: revocations (oldest first), then (when a poll asked for it) one batch of
   * bans, then pruning when due. Never throws: an outage keeps it waiting; a refusal (configuration
   * error) keeps revocations journaled (they hold here) and leaves bans to this instance's regulator.
   */
  const writeOnce = async (): Promise<void> => {
    if (clock.nowMs() < refusedUntil) return;
    let changed = false;
    try {
      // Also those decided while this write runs (in order).
      while (journaled.length) {
        const r = journaled[0]!;
        await store.revoke(r);
        journaled = journaled.filter((x) => x !== r);
        changed = true;
      }
      startupJournal = false;
      if (bansDue && pendingBans.size) {
        bansDue = false;
        const now = clock.nowMs();
        const batch: Ban[] = [];
        for (const [key, ban] of pendingBans) {
          if (batch.length >= MAX_BAN_BATCH) break;
          if (ban.until > now) batch.push(ban);
          else pendingBans.delete(key);
        }
        try {
          await store.bans(batch);
        } catch (err) {
          if (!(err instanceof GatewayStateRefused)) throw err;
          refused(err, "bans this instance decides are kept here only (they still hold on this instance)");
        }
        // Written (or refused): out of the queue, unless a longer ban for the same key came meanwhile.
        for (const ban of batch) if (pendingBans.get(banKey(ban)) === ban) pendingBans.delete(banKey(ban));
      }
      const now = clock.nowMs();
      if (now - lastPrune >= PRUNE_EVERY_MS) {
        lastPrune = now;
        await store.prune(now).catch(() => undefined);
      }
      writeDown = false;
      if (writeDownLogged) {
        writeDownLogged = false;
        log({ event: "shared-state", result: "writable", where: store.where });
      }
    } catch (err) {
      if (err instanceof GatewayStateRefused) {
        startupJournal = false;
        refused(err, `${journaled.length} logout(s) hold on this instance only (kept in ${journal?.path ?? "memory"}) until it is fixed`);
      } else writeFailed(err);
    } finally {
      if (changed) saveJournal();
    }
  };

  /** Start a write unless one is in flight (then one more follows it). Never rejects. */
  const write = (): Promise<void> => {
    if (writing) {
      writeAgain = true;
      return writing;
    }
    writing = writeOnce().finally(() => {
      writing = null;
      if (writeAgain) {
        writeAgain = false;
        void write();
      }
    });
    return writing;
  };

  const poll = async (): Promise<boolean> => {
    // The writer runs beside the reads and never holds them up (RT-B F1), nor does its failure (RT2 F2).
    bansDue = true;
    logDrops();
    const written = write();
    // At the start, the revocations an earlier run journaled must be in the database before a poll counts.
    if (startupJournal) await written;
    try {
      const now = clock.nowMs();
      const changes = await store.changes(cursor, now);
      cursor = changes.cursor;
      absorb(changes.revocations);
      if (regulator) for (const ban of changes.bans) regulator.applyBan(ban, now);
      if (startupJournal) {
        // The database answers but the revocations of an earlier run are not in it yet: not healthy yet (the others would not know them).
        failed(new Error(`${journaled.length} revocation(s) from ${journal?.path ?? "the journal"} are not written yet (${lastWriteError})`));
        return false;
      }
      lastSync = clock.nowMs();
      if (down) {
        down = false;
        log({ event: "shared-state", result: "reachable", where: store.where });
      }
      if (writeDown && !writeDownLogged) {
        // Reads work, writes do not (a lock, a full disk): sessions are still checked; say it once.
        writeDownLogged = true;
        log({
          event: "error",
          where: "shared-state",
          result: "write-failed",
          message: `${lastWriteError}; ${store.where} answers reads but not writes: logouts and bans of this instance hold here and are written when it does`,
        });
      }
      if (changes.revocations.length) for (const l of listeners) l();
      return true;
    } catch (err) {
      failed(err);
      return false;
    }
  };

  const pollOnce = (): Promise<boolean> => {
    // One poll at a time: a slow database is never asked twice at once.
    polling ??= poll().finally(() => (polling = null));
    return polling;
  };

  /** One poll, and then the write it started (the timer's polls never wait for writes). */
  const sync = async (): Promise<boolean> => {
    const ok = await pollOnce();
    while (writing) await writing;
    return ok;
  };

  /** A revocation decided here: in force here at once, journaled (durable) before anything else, then written. */
  const revoke = (r: Revocation): SessionsState => {
    absorb([r]);
    journaled.push(r);
    saveJournal();
    void write(); // at once (not at the next poll), through the one writer
    return state;
  };

  /** Never throws, never waits: the ban holds here already (in the regulator); it is written with the next poll. */
  const publishBan = (ban: Ban) => queueBan(ban);

  const sessionsStore: SessionsStore = {
    read: (): SessionsFileRead => ({ state, version: null }),
    // Kept as long as any session created before it could live, on any instance (RT-B F4).
    revokeUser: async (user, at) => revoke({ kind: "user", user, at, until: at + LONGEST_SESSION_MS }),
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
      timer = setInterval(() => void pollOnce(), pollMs);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      await polling;
      await writing;
      refusedUntil = -Infinity;
      bansDue = true;
      await write();
      if (journaled.length) {
        log({
          event: "error",
          where: "shared-state",
          message: `${journaled.length} revocation(s) not yet in ${store.where} ${journal ? `stay in ${journal.path} and are written at the next start` : "are lost (no journal)"}`,
        });
      }
      droppedBans += pendingBans.size;
      if (droppedBans) log({ event: "error", where: "shared-state", message: `${droppedBans} ban(s) not yet in ${store.where} are dropped (they end by themselves)` });
      await store.close();
    },
  };
}
