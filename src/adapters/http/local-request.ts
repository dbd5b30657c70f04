// Whether a request comes from this machine itself, not through a proxy on it: behind nginx/Caddy
// on the same host every peer is loopback, so the peer alone proves nothing (red team 1, F4:
// /metrics was public through the reverse proxy).

import { isTrustedProxy, type TrustedProxies } from "../../core/web/client-address.js";
import type { HeaderList } from "./gateway-types.js";

export const isLoopback = (address: string): boolean => /^127\./.test(address) || address === "::1" || /^::ffff:127\./i.test(address);

/** Headers a proxy adds: their presence means the request was forwarded on someone's behalf. */
const FORWARDING = /^(forwarded|via|x-real-ip|x-forwarded(-.*)?|x-client-ip|true-client-ip|cf-connecting-ip)$/i;

/**
 * True only when the peer is loopback, is not one of trusted_proxies, and the request carries no
 * forwarding header (Forwarded, Via, X-Forwarded-*, X-Real-IP, ...).
 */
export function isLocalRequest(remoteAddress: string, headers: HeaderList, trusted: TrustedProxies): boolean {
  if (!isLoopback(remoteAddress) || isTrustedProxy(remoteAddress, trusted)) return false;
  return !headers.some(([name]) => FORWARDING.test(name));
}
