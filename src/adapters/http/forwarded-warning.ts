// X-Forwarded-For or Forwarded from a peer that is not in trusted_proxies is ignored (the peer is
// the client). That is right for a client that forges it, and a mistake when the peer is a proxy
// the admin forgot to list: every client then shares the proxy's address, and one client's
// failures ban them all. Either way the admin should know: a warning is logged, at most once a
// minute (whatever the traffic), naming the peer and how many such requests were seen since.

import { isTrustedProxy, type TrustedProxies } from "../../core/web/client-address.js";
import { headerValues } from "../../core/web/index.js";
import type { GatewayLog, GatewayRequest } from "./gateway-types.js";

const EVERY_MS = 60_000;

export function forwardedWarner(trusted: TrustedProxies, log: GatewayLog, nowMs: () => number): (req: GatewayRequest) => void {
  let lastAt = Number.NEGATIVE_INFINITY;
  let unreported = 0;
  return (req) => {
    if (!req.headers.some(([n]) => n === "x-forwarded-for" || n === "forwarded")) return;
    if (isTrustedProxy(req.remoteAddress, trusted)) return;
    unreported++;
    const now = nowMs();
    if (now - lastAt < EVERY_MS) return;
    lastAt = now;
    const which = headerValues(req.headers, "x-forwarded-for").length ? "X-Forwarded-For" : "Forwarded";
    log({
      event: "warning",
      where: "forwarded",
      peer: req.remoteAddress,
      requests: unreported,
      message: `${which} from ${req.remoteAddress}, which is not in trusted_proxies: ignored, the peer is taken as the client (${unreported} such request(s) since the last warning). If ${req.remoteAddress} is your proxy, add it to trusted_proxies; otherwise a client is sending it`,
    });
    unreported = 0;
  };
}
