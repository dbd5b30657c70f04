// The gateway's code and its YAML parser, bundled into their own file (dist/otpgate-gateway.cjs)
// so the login path (verify, pam) never parses them. A composition root: it wires the gateway to
// otpgate server's client when the configuration names decision_socket.

import { usePublicApisOnly } from "../../platform/node-internals.js";
import type { CachedAccount } from "../../platform/user-cache.js";
import { accountStore, statePathOf } from "../../stores/file-accounts.js";
import type { FileAccountStore } from "../../stores/file-store.js";
import { GatewaySessionsFile } from "../../stores/gateway-sessions.js";
import type { SessionsFileOpener } from "./sessions.js";
import { DecisionClient } from "../server/client.js";
import type { GatewayConfig } from "./gateway-config.js";
import { systemClock } from "../../platform/clock.js";
import { storePasswordOf } from "../../stores/store-password.js";
import { createSharedState, type SharedState } from "./shared-state.js";
import { fileJournal, journalPathOf } from "../../stores/gateway-journal.js";
import { createGateway as createGatewayShell, type Gateway, type GatewayLog, type GatewayOptions, type GatewayStores } from "./gateway-server.js";

export { preflight } from "./gateway-server.js";
export { checkGatewayFiles, duration, gatewayConfigWarnings, loadGatewayConfig, parseGatewayConfig } from "./gateway-config.js";
export { dropPrivileges, resolveRunAs, rootWithoutUserMessage } from "./run-as.js";

/** The state-file stores under `stateFiles` (state_files), each opened as its account (the in-process decisions). */
export function stateFileStores(stateFiles: string): (account: CachedAccount) => FileAccountStore {
  return (account) => accountStore(account, statePathOf(account, { secret: stateFiles }));
}

/** sessions_file, for the session service (adapters/http/sessions.ts). */
export const openSessionsFile: SessionsFileOpener = (path, lockSecret, recordedBy) => new GatewaySessionsFile(path, lockSecret, recordedBy);

/** The gateway; with decision_socket it asks otpgate server there (a lookup's timeout plus 2 s per question). */
export function createGateway(config: GatewayConfig, log: GatewayLog, options: Omit<GatewayOptions, "stores"> & { readonly stores?: GatewayStores } = {}): Gateway {
  // A resident process: public Node APIs only (platform/node-internals.ts).
  usePublicApisOnly();
  const decisions =
    options.decisions ?? (config.decisionSocket ? new DecisionClient({ socketPath: config.decisionSocket, timeoutMs: config.userLookupTimeoutMs + 2_000, connections: 64 }) : undefined);
  const stores = options.stores ?? { stateFile: stateFileStores(config.stateFiles), sessionsFile: openSessionsFile };
  return createGatewayShell(config, log, { ...options, stores, ...(decisions ? { decisions } : {}) });
}

/**
 * The shared state of several instances (config `store:`): node-postgres is loaded only here, only
 * with `store:`. Reads store_password_file as the gateway's user (call it after dropping to it).
 * The first poll is waited for (at most the connect timeout); when the database is down the gateway
 * still starts, refuses sessions (fail closed) and keeps trying. Throws ConfigError for a URL or
 * password file that cannot be used.
 */
export async function openSharedState(config: GatewayConfig, log: GatewayLog, options: { readonly pollMs?: number; readonly staleAfterMs?: number } = {}): Promise<SharedState | null> {
  if (!config.store) return null;
  const { openGatewayStateStore } = await import("../../stores/pg/gateway-state.js");
  const store = await openGatewayStateStore({ url: config.store, password: storePasswordOf(config) });
  // Logouts not yet in the database survive a restart here (RT2 F1); a journal that cannot be trusted stops the start (ConfigError).
  const journal = fileJournal(journalPathOf(config.keysFile));
  const shared = createSharedState({ store, clock: systemClock, log, absoluteMs: config.session.absoluteMs, journal, ...options });
  await shared.sync();
  shared.start();
  return shared;
}

export { storePasswordOf } from "../../stores/store-password.js";

/**
 * For --check-config: whether the shared state answers now, and what it holds (never throws for
 * an unreachable database). `password`: storePasswordOf(config), read as the gateway's user.
 */
export async function sharedStateNote(config: GatewayConfig, password: string | undefined): Promise<{ readonly ok: boolean; readonly note: string; readonly misconfigured?: boolean } | null> {
  if (!config.store) return null;
  const { openGatewayStateStore } = await import("../../stores/pg/gateway-state.js");
  const store = await openGatewayStateStore({ url: config.store, password });
  try {
    const now = systemClock.nowMs();
    const c = await store.changes(null, now);
    const users = new Set<string>();
    let sessions = 0;
    for (const r of c.revocations) r.kind === "user" ? users.add(r.user) : sessions++;
    // Reading works; writing might not (RT2 F2: a ban the role may not INSERT). Checked without writing anything.
    const missing = (await store.missingPrivileges?.()) ?? [];
    if (missing.length) {
      return {
        ok: false,
        misconfigured: true,
        note: `the gateway's role in ${store.where} lacks ${missing.join(", ")}: grant it (GRANT SELECT, INSERT, DELETE ON otpgate_gateway_revocations, otpgate_gateway_bans TO ROLE, and USAGE on their _id_seq sequences); without it logouts and bans of this instance hold here only`,
      };
    }
    return { ok: true, note: `revocations and bans shared in ${store.where}: ${sessions} revoked session(s), ${users.size} user(s) logged out everywhere, ${c.bans.length} ban(s) in force` };
  } catch (err) {
    return { ok: false, note: `${(err as Error).message}: the gateway would start, but refuse every session until it answers (fail closed)` };
  } finally {
    await store.close();
  }
}

/**
 * otpgate gateway sessions --revoke USER with `store:`: "log out everywhere" in the shared state
 * (every instance ends USER's sessions within about a second). Throws GatewayStateUnavailable
 * when the database cannot be reached (nothing was changed then).
 */
export async function revokeSharedUser(config: GatewayConfig, password: string | undefined, user: string, now: number): Promise<string> {
  const { openGatewayStateStore } = await import("../../stores/pg/gateway-state.js");
  const store = await openGatewayStateStore({ url: config.store!, password });
  try {
    await store.revoke({ kind: "user", user, at: now, until: now + config.session.absoluteMs });
    return store.where;
  } finally {
    await store.close();
  }
}

/** otpgate gateway sessions --list with `store:`: what the shared state holds now. */
export async function sharedSessionDecisions(config: GatewayConfig, password: string | undefined, now: number): Promise<{ validAfter: Map<string, number>; revoked: number; bans: number }> {
  const { openGatewayStateStore } = await import("../../stores/pg/gateway-state.js");
  const store = await openGatewayStateStore({ url: config.store!, password });
  try {
    const c = await store.changes(null, now);
    const validAfter = new Map<string, number>();
    let revoked = 0;
    for (const r of c.revocations) {
      if (r.kind === "user") validAfter.set(r.user, Math.max(r.at, validAfter.get(r.user) ?? 0));
      else revoked++;
    }
    return { validAfter, revoked, bans: c.bans.length };
  } finally {
    await store.close();
  }
}
