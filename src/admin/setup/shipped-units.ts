// The units shipped in the package (packaging/systemd/), for otpgate installed with
// `npm install -g` on Debian (node in /usr/bin, the package in /usr/local/lib/node_modules).
// Adjust ExecStart= in a drop-in when installed elsewhere.

import { gatewayUnit, serverUnit } from "./systemd-unit.js";

export const SHIPPED_NODE = "/usr/bin/node";
export const SHIPPED_OTPGATE = "/usr/local/lib/node_modules/otpgate/dist/otpgate.cjs";

export function shippedUnits(): Record<string, string> {
  return {
    "otpgate-server.service": serverUnit(SHIPPED_NODE, SHIPPED_OTPGATE, ["server", "--listen", "127.0.0.1:1812", "--secret-file", "/etc/otpgate/radius.secret"]),
    "otpgate-gateway.service": gatewayUnit(SHIPPED_NODE, SHIPPED_OTPGATE, ["gateway", "--config", "/etc/otpgate/gateway.yaml"]),
  };
}
