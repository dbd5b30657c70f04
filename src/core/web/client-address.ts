// Who the client is: the TCP peer, unless the peer is a proxy the admin listed in trusted_proxies;
// then X-Forwarded-For is walked from the right past trusted proxies (nginx's real_ip_recursive),
// and the first address that is not a trusted proxy is the client. With no trusted proxies (the
// default) X-Forwarded-For is never believed: a client cannot choose the address its failures are
// counted under. Addresses are compared as 16 bytes (IPv4 as ::ffff:a.b.c.d), printed canonically.
// Entries a trusted hop wrote with a port (203.0.113.5:4711, [2001:db8::5]:4711: Azure Application
// Gateway and other load balancers) count as their address, as nginx's realip and HAProxy take them.
// An entry a trusted hop wrote that is not an address ("unknown": Squid with forwarded_for off, nginx
// with a unix-socket peer) makes the client UNKNOWN_CLIENT, never the proxy: were the proxy the
// client, one client's failures would ban everybody behind it. The gateway counts each such request
// under a key of its own (unknownClientKey), which bans nobody else; per-user pacing still applies.

import { ConfigError } from "../errors.js";

/** An address range: 16 bytes (IPv4 mapped into ::ffff:0:0/96) and a prefix length out of 128. */
export interface IpRange {
  /** As the admin should write it, canonical: 10.0.0.0/8, 2001:db8::/32, 192.0.2.7. */
  readonly text: string;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** The proxies whose X-Forwarded-For is believed (parseTrustedProxies). */
export interface TrustedProxies {
  readonly ranges: readonly IpRange[];
}

export const NO_TRUSTED_PROXIES: TrustedProxies = { ranges: [] };

const IPV4 = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4(text: string): number[] | null {
  const m = IPV4.exec(text);
  if (!m) return null;
  const octets = m.slice(1, 5).map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

function parseIpv6(text: string): Uint8Array | null {
  if (text.length > 45 || !text.includes(":")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (i === pieces.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (HEX_GROUP.test(p)) out.push(parseInt(p, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  // An embedded IPv4 address may only end the address.
  if (halves.length === 2 && halves[0]!.includes(".")) return null;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return null;
  const all = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** An IPv4 or IPv6 address as 16 bytes (IPv4 mapped), or null when `text` is not exactly an address (no zone ids, brackets or ports). */
export function parseIp(text: string): Uint8Array | null {
  const v4 = parseIpv4(text);
  if (v4) return new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]);
  return parseIpv6(text);
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** The canonical text of an address: dotted IPv4 for IPv4 and IPv4-mapped IPv6, RFC 5952 for IPv6. */
export function formatIp(b: Uint8Array): string {
  if (isMapped(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  // The longest run of two or more zero groups (the first of equal runs) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** The canonical form of an address (IPv4-mapped IPv6 becomes IPv4), or null when it is not one. */
export function normalizeAddress(text: string): string | null {
  const b = parseIp(text);
  return b ? formatIp(b) : null;
}

function inRange(b: Uint8Array, r: { readonly bytes: Uint8Array; readonly prefix: number }): boolean {
  let bits = r.prefix;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[i]! & mask) !== (r.bytes[i]! & mask)) return false;
  }
  return true;
}

/** Whether an address (any spelling parseIp accepts) is one of the trusted proxies. */
export function isTrustedProxy(address: string, trusted: TrustedProxies): boolean {
  const b = parseIp(address);
  return b !== null && trusted.ranges.some((r) => inRange(b, r));
}

const EXAMPLES = "such as 192.0.2.7, 10.0.0.0/8, 2001:db8::1 or 2001:db8::/32";

/** trusted_proxies ranges may be at most this wide (RT-B F5): wider ones trust a large part of the Internet (unique local IPv6 excepted). */
export const MIN_V4_PREFIX = 8;
export const MIN_V6_PREFIX = 32;

/** Unique local IPv6 (fc00::/7): private like 10.0.0.0/8, so a range inside it may be wider than /32 (fd00::/8). */
const UNIQUE_LOCAL = { bytes: parseIp("fc00::")!, prefix: 7 };

/** IPv6 blocks a trusted range must not contain (a single address may be one of them: ::1 is a fine proxy). */
const SPECIAL_V6: readonly { readonly bytes: Uint8Array; readonly prefix: number; readonly what: string }[] = [
  { bytes: parseIp("::ffff:0:0")!, prefix: 96, what: "the IPv4-mapped addresses (::ffff:0:0/96: every IPv4 client)" },
  { bytes: parseIp("64:ff9b::")!, prefix: 96, what: "the NAT64 addresses (64:ff9b::/96: every IPv4 client through NAT64)" },
  { bytes: parseIp("::1")!, prefix: 128, what: "the loopback address (::1)" },
];

/** What the client is called when a trusted proxy did not say who it is (an X-Forwarded-For entry it wrote is not an address). */
export const UNKNOWN_CLIENT = "unknown";

const UNKNOWN_KEY = /^unknown-[1-9][0-9]{0,15}$/;

/** The regulation key of the `n`th request (n >= 1) whose client is UNKNOWN_CLIENT: one per request, so it can ban nobody else. */
export function unknownClientKey(n: number): string {
  return `unknown-${Math.max(1, Math.floor(n))}`;
}

/** Whether `text` is a key unknownClientKey() made (kept as it is by attemptAddress, never an address). */
export function isUnknownClientKey(text: string): boolean {
  return UNKNOWN_KEY.test(text);
}

/**
 * One X-Forwarded-For entry (already trimmed) as an address: an address as parseIp takes it, or
 * IPv4:port, [IPv6] or [IPv6]:port (the port, 1-65535, is dropped). Null for anything else.
 */
export function parseForwardedEntry(entry: string): Uint8Array | null {
  const plain = parseIp(entry);
  if (plain) return plain;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+))(?::([1-9][0-9]{0,4}))?$/.exec(entry);
  if (!m || (m[2] !== undefined && m[3] === undefined)) return null;
  if (m[3] !== undefined && Number(m[3]) > 65535) return null;
  return m[1] !== undefined ? parseIpv6(m[1]) : parseIp(m[2]!);
}

/** One trusted_proxies entry as a range, or the reason it is not one (what to write instead). */
export function parseProxyEntry(entry: string): IpRange | string {
  const slash = entry.indexOf("/");
  const addrText = slash < 0 ? entry : entry.slice(0, slash);
  const bytes = parseIp(addrText);
  if (!bytes) {
    if (addrText.includes("%")) return `"${entry}": zone ids (%...) are not supported; write the address without it`;
    return `"${entry}" is not an IP address or CIDR range; write one ${EXAMPLES} (host names are not resolved)`;
  }
  const v4 = parseIpv4(addrText) !== null;
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const lenText = entry.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > max) return `"${entry}": the prefix length after "/" must be a number from 0 to ${max} for ${v4 ? "IPv4" : "IPv6"}`;
    prefix = Number(lenText);
  }
  if (prefix === 0) return `"${entry}" would trust every address, so any client could choose the address it is counted under; list your proxies' addresses`;
  const full = v4 ? prefix + 96 : prefix;
  const network = new Uint8Array(16);
  for (let i = 0, bits = full; i < 16; i++, bits -= 8) network[i] = bytes[i]! & (bits >= 8 ? 0xff : bits <= 0 ? 0 : (0xff << (8 - bits)) & 0xff);
  const networkText = formatIp(network);
  if (network.some((x, i) => x !== bytes[i]))
    return `"${entry}" has address bits set after the /${prefix} prefix; write ${!v4 && isMapped(network) && full >= 96 ? `::ffff:${networkText}` : networkText}/${prefix}`;
  // An IPv4-mapped range (::ffff:a.b.c.d/96+n) is the IPv4 range a.b.c.d/n: checked and printed as that.
  const v4Prefix = v4 ? prefix : isMapped(network) && full >= 96 ? full - 96 : null;
  const asV4 = v4Prefix === null ? null : v4Prefix === 32 ? networkText : `${networkText}/${v4Prefix}`;
  if (!v4 && asV4 !== null && v4Prefix === 0) return `"${entry}" is every IPv4 address (0.0.0.0/0), so any IPv4 client could choose the address it is counted under; list your proxies' addresses`;
  if (v4Prefix !== null && v4Prefix < MIN_V4_PREFIX)
    return `"${entry}"${v4 ? "" : ` (${asV4})`} is wider than /${MIN_V4_PREFIX}: list your proxies' addresses, or the smallest ranges that hold them (such as 10.0.0.0/8 or 192.0.2.0/24)`;
  if (v4Prefix === null && full < MIN_V6_PREFIX && !(full >= UNIQUE_LOCAL.prefix && inRange(network, UNIQUE_LOCAL)))
    return `"${entry}" is wider than /${MIN_V6_PREFIX}: list your proxies' addresses, or the smallest ranges that hold them (such as 2001:db8::/48)`;
  if (v4Prefix === null && full < 128) {
    const range = { bytes: network, prefix: full };
    const special = SPECIAL_V6.find((b) => full <= b.prefix && inRange(b.bytes, range));
    if (special) return `"${entry}" contains ${special.what}, so clients there could choose the address they are counted under; list your proxies' addresses`;
  }
  if (asV4 !== null) return { text: asV4, bytes: network, prefix: full };
  return { text: prefix === max ? networkText : `${networkText}/${prefix}`, bytes: network, prefix: full };
}

/** The trusted_proxies setting; throws ConfigError naming every bad entry (one per line). */
export function parseTrustedProxies(entries: readonly string[]): TrustedProxies {
  const ranges: IpRange[] = [];
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    const r = parseProxyEntry(entry);
    if (typeof r === "string") problems.push(`trusted_proxies[${i}]: ${r}`);
    else ranges.push(r);
  });
  if (problems.length) throw new ConfigError(problems.join("\n"));
  return { ranges };
}

export interface ClientAddress {
  /** The client, canonical (IPv4-mapped IPv6 as IPv4). */
  readonly address: string;
  /** The chain the gateway believes, client first, the peer last ("client, proxy2, proxy1"): X-Forwarded-For for the app. */
  readonly forwardedFor: string;
  /** False when a trusted proxy wrote an entry that is not an address: `address` is then UNKNOWN_CLIENT. */
  readonly known: boolean;
  /** That entry (as the proxy wrote it) and the trusted hop that wrote it; only when `known` is false. */
  readonly notAnAddress?: { readonly entry: string; readonly writtenBy: string };
}

/**
 * The client's address. X-Forwarded-For (all its header lines, in order) is believed only while the
 * hop that wrote it is a trusted proxy: the walk goes from the right, starting at the peer, and stops
 * at the first untrusted address (the client). An entry with a port counts as its address. An entry
 * a trusted hop wrote that is not an address makes the client UNKNOWN_CLIENT (known: false): nothing
 * to its left is believed, and the proxy is not taken for the client. All entries trusted: the leftmost.
 */
export function clientAddress(peer: string, xffValues: readonly string[], trusted: TrustedProxies): ClientAddress {
  let current = parseIp(peer);
  if (!current) return { address: peer, forwardedFor: peer, known: true };
  const chain = [formatIp(current)];
  if (trusted.ranges.length > 0 && xffValues.length > 0) {
    const entries = xffValues.join(",").split(",");
    for (let i = entries.length - 1; i >= 0; i--) {
      const hop = current;
      if (!trusted.ranges.some((r) => inRange(hop, r))) break;
      const entry = entries[i]!.trim();
      const next = parseForwardedEntry(entry);
      if (!next) {
        chain.unshift(UNKNOWN_CLIENT);
        return { address: UNKNOWN_CLIENT, forwardedFor: chain.join(", "), known: false, notAnAddress: { entry, writtenBy: chain[1]! } };
      }
      current = next;
      chain.unshift(formatIp(next));
    }
  }
  return { address: chain[0]!, forwardedFor: chain.join(", "), known: true };
}

/**
 * The key per-address counters and caps use: IPv4 as is, IPv6 by its /64 (one subscriber usually
 * has a whole /64, so counting single IPv6 addresses would give each client 2^64 tries).
 * Text that is not an address is returned unchanged.
 */
export function addressKey(address: string): string {
  const b = parseIp(address);
  if (!b) return address;
  if (isMapped(b)) return formatIp(b);
  const net = new Uint8Array(16);
  net.set(b.subarray(0, 8));
  return `${formatIp(net)}/64`;
}
