// The gateway's code and its YAML parser, bundled into their own file (dist/otpgate-gateway.cjs)
// so the login path (verify, pam) never parses them. A composition root: it wires the gateway to
// otpgate server's client when the configuration names decision_socket.

import { usePublicApisOnly } from "../../platform/node-internals.js";
import { DecisionClient } from "../server/client.js";
import type { GatewayConfig } from "./gateway-config.js";
import { createGateway as createGatewayShell, type Gateway, type GatewayLog, type GatewayOptions } from "./gateway-server.js";

export { preflight } from "./gateway-server.js";
export { checkGatewayFiles, duration, gatewayConfigWarnings, loadGatewayConfig, parseGatewayConfig } from "./gateway-config.js";
export { dropPrivileges, resolveRunAs, rootWithoutUserMessage } from "./run-as.js";

/** The gateway; with decision_socket it asks otpgate server there (a lookup's timeout plus 2 s per question). */
export function createGateway(config: GatewayConfig, log: GatewayLog, options: GatewayOptions = {}): Gateway {
  // A resident process: public Node APIs only (platform/node-internals.ts).
  usePublicApisOnly();
  const decisions = options.decisions ?? (config.decisionSocket ? new DecisionClient({ socketPath: config.decisionSocket, timeoutMs: config.userLookupTimeoutMs + 2_000, connections: 64 }) : undefined);
  return createGatewayShell(config, log, { ...options, ...(decisions ? { decisions } : {}) });
}
