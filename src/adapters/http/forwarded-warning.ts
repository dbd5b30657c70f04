// Mistakes in how the gateway learns the client's address are silent by nature: every client then
// shares one address, and one client's failures ban them all. So each is logged as a warning, at
// most once a minute per kind (whatever the traffic), naming the peer and how many such requests
// were seen since the last warning:
//   - X-Forwarded-For or Forwarded from a peer that is not in trusted_proxies: ignored, the peer is
//     the client. Right for a client that forges it; a mistake when the peer is a proxy the admin
//     forgot to list.
//   - a peer in trusted_proxies that sends no X-Forwarded-For (Forwarded is not read): the proxy is
//     then the client of every request it passes on (its own health checks of /healthz excepted).
//   - an X-Forwarded-For entry a trusted proxy wrote that is not an address ("unknown"; with a port
//     is fine): the client is unknown and counted per request (client-address.ts, RT-B F3).

import { clientAddress, isTrustedProxy, type TrustedProxies } from "../../core/web/client-address.js";
import { logValue } from "../../core/log-fields.js";
import { headerValues } from "../../core/web/index.js";
import type { GatewayLog, GatewayRequest } from "./gateway-types.js";

const EVERY_MS = 60_000;
const HEALTH_CHECK = /^\/healthz(?:\?|$)/;

type Kind = "untrusted" | "missing" | "not-an-address";

export function forwardedWarner(trusted: TrustedProxies, log: GatewayLog, nowMs: () => number): (req: GatewayRequest) => void {
  const state: Record<Kind, { lastAt: number; unreported: number }> = {
    untrusted: { lastAt: Number.NEGATIVE_INFINITY, unreported: 0 },
    missing: { lastAt: Number.NEGATIVE_INFINITY, unreported: 0 },
    "not-an-address": { lastAt: Number.NEGATIVE_INFINITY, unreported: 0 },
  };
  /** Counts the request; the number of requests to report when a warning is due now, else null. */
  const due = (kind: Kind): number | null => {
    const s = state[kind];
    s.unreported++;
    const now = nowMs();
    if (now - s.lastAt < EVERY_MS) return null;
    s.lastAt = now;
    const n = s.unreported;
    s.unreported = 0;
    return n;
  };
  const warn = (peer: string, requests: number, message: string) => log({ event: "warning", where: "forwarded", peer, requests, message });
  return (req) => {
    const peer = req.remoteAddress;
    if (trusted.ranges.length === 0 && !req.headers.some(([n]) => n === "x-forwarded-for" || n === "forwarded")) return;
    const xff = headerValues(req.headers, "x-forwarded-for");
    if (!isTrustedProxy(peer, trusted)) {
      if (xff.length === 0 && !req.headers.some(([n]) => n === "forwarded")) return;
      const n = due("untrusted");
      if (n === null) return;
      const which = xff.length ? "X-Forwarded-For" : "Forwarded";
      warn(
        peer,
        n,
        `${which} from ${peer}, which is not in trusted_proxies: ignored, the peer is taken as the client (${n} such request(s) since the last warning). If ${peer} is your proxy, add it to trusted_proxies; otherwise a client is sending it`,
      );
      return;
    }
    if (xff.length === 0) {
      // A load balancer's own health checks carry no X-Forwarded-For: they are not a mistake.
      if (HEALTH_CHECK.test(req.target)) return;
      const n = due("missing");
      if (n === null) return;
      warn(
        peer,
        n,
        `${peer} is in trusted_proxies but sent no X-Forwarded-For (${n} such request(s) since the last warning): it is taken as the client, so all clients behind it share its address and one client's failures ban them all. Make the proxy add the header (nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; otpgate does not read Forwarded), or remove ${peer} from trusted_proxies if it is not a proxy`,
      );
      return;
    }
    const c = clientAddress(peer, xff, trusted);
    if (c.known || !c.notAnAddress) return;
    const n = due("not-an-address");
    if (n === null) return;
    const { entry, writtenBy } = c.notAnAddress;
    const shown = logValue(entry.length > 64 ? entry.slice(0, 64) : entry);
    warn(
      peer,
      n,
      `the X-Forwarded-For entry ${shown.startsWith('"') ? shown : `"${shown}"`} written by ${writtenBy}, a trusted proxy, is not an address (${n} such request(s) since the last warning): the client is unknown, and each such sign-in is counted on its own (no address ban; per-user pacing still applies). Make the proxy write the client's address (IPv4, IPv6, or either with a port)`,
    );
  };
}
