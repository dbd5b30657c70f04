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
