// The gateway's code and its YAML parser, bundled into their own file (dist/otpgate-gateway.cjs)
// so the login path (verify, pam) never parses them.

export { createGateway, preflight } from "./gateway-server.js";
export { checkGatewayFiles, duration, gatewayConfigWarnings, loadGatewayConfig, parseGatewayConfig } from "./gateway-config.js";
export { dropPrivileges, resolveRunAs, rootWithoutUserMessage } from "./run-as.js";
