// Gateway instances that agree (issue 11, `store:` in the configuration): the ended sessions and
// the regulation's bans of every instance, through the shared state (ports/gateway-state.ts).
//   - Writes: a logout, "log out everywhere" and every ban this instance decides are written at
//     once; one that cannot be written (database down) stays in force here and is queued, and
//     written again before each poll until it is in.
//   - Reads: every POLL_MS (1 s) the changes since the previous poll; so a logout or ban on one
//     instance holds on the others within about a second (the documented delay).
//   - Fail closed: revocations that cannot be checked cannot be trusted. When the last successful
//     poll is older than STALE_AFTER_MS (10 s), every session cookie is refused and no session is
//     issued (the login page says the service is unavailable; nothing is counted); one log line when
//     it starts and one when the database answers again. Bans keep working from memory meanwhile.
//     Nothing needs a restart: the next successful poll restores service.

import type { Regulator } from "../../core/web/index.js";
import type { Clock } from "../../ports/index.js";
import type { Ban, GatewayStateStore, Revocation } from "../../ports/gateway-state.js";
import { mergeSessionsStates, pruneSessionsState, type SessionsFileRead, type SessionsState, type SessionsStore } from "../../stores/gateway-sessions.js";
import type { GatewayLog } from "./gateway-types.js";

export const POLL_MS = 1000;
export const STALE_AFTER_MS = 10_000;
const PRUNE_EVERY_MS = 10 * 60_000;
const MAX_PENDING = 10_000;

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
}

type Pending = { readonly revocation: Revocation } | { readonly ban: Ban };

export function createSharedState(options: SharedStateOptions): SharedState {
  const { store, clock, log, absoluteMs } = options;
  const pollMs = options.pollMs ?? POLL_MS;
  const staleAfterMs = options.staleAfterMs ?? STALE_AFTER_MS;
  let state: SessionsState = { revoked: new Map(), validAfter: new Map() };
  let cursor: number | null = null;
  let lastSync = -Infinity;
  let lastError = "it has not answered yet";
  let down = false;
  let lastPrune = -Infinity;
  let regulator: Regulator | null = null;
  const pending: Pending[] = [];
  const listeners: (() => void)[] = [];
  let timer: NodeJS.Timeout | null = null;
  let polling: Promise<boolean> | null = null;

  const absorb = (revocations: readonly Revocation[]) => {
    const revoked = new Map<string, number>();
    const validAfter = new Map<string, number>();
    for (const r of revocations) {
      if (r.kind === "session") revoked.set(r.sid, Math.max(r.until, revoked.get(r.sid) ?? 0));
      else validAfter.set(r.user, Math.max(r.at, validAfter.get(r.user) ?? 0));
    }
    state = pruneSessionsState(mergeSessionsStates(state, { revoked, validAfter }), clock.nowMs());
  };

  const queue = (item: Pending) => {
    if (pending.length >= MAX_PENDING) pending.shift(); // the oldest first: bans end, revocations still hold here
    pending.push(item);
  };

  const writeOne = (item: Pending) => ("revocation" in item ? store.revoke(item.revocation) : store.ban(item.ban));

  const failed = (err: unknown) => {
    lastError = (err as Error).message;
    if (!down && clock.nowMs() - lastSync > staleAfterMs) {
      down = true;
      log({ event: "error", where: "shared-state", message: `${lastError}; every session is refused until it answers (fail closed)` });
    }
  };

  const poll = async (): Promise<boolean> => {
    try {
      while (pending.length) {
        await writeOne(pending[0]!);
        pending.shift();
      }
      const now = clock.nowMs();
      const changes = await store.changes(cursor, now);
      cursor = changes.cursor;
      absorb(changes.revocations);
      if (regulator) for (const ban of changes.bans) regulator.applyBan(ban, now);
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

  const write = async (item: Pending): Promise<void> => {
    try {
      await writeOne(item);
    } catch (err) {
      queue(item);
      failed(err);
      throw err;
    }
  };

  const sessionsStore: SessionsStore = {
    read: (): SessionsFileRead => ({ state, version: null }),
    async revokeUser(user, at) {
      absorb([{ kind: "user", user, at, until: at + absoluteMs }]);
      await write({ revocation: { kind: "user", user, at, until: at + absoluteMs } });
      return state;
    },
    async revokeSession(sid, until) {
      absorb([{ kind: "session", sid, until }]);
      await write({ revocation: { kind: "session", sid, until } });
      return state;
    },
  };

  return {
    store: sessionsStore,
    onChange: (listener) => void listeners.push(listener),
    available: (now) => now - lastSync <= staleAfterMs,
    unavailableMessage: () =>
      `the gateway's shared state (${store.where}) has not answered ${lastSync === -Infinity ? "since the start" : `for ${Math.round((clock.nowMs() - lastSync) / 1000)} s`} (${lastError}); sessions cannot be checked`,
    publishBan: (ban) => void write({ ban }).catch(() => undefined),
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
      while (pending.length) {
        try {
          await writeOne(pending[0]!);
          pending.shift();
        } catch {
          break;
        }
      }
      await store.close();
    },
  };
}
