// The RADIUS clients file (`otpgate server --clients-file FILE`, issue 11): network clients that
// cannot run otpgate themselves (VPN concentrators, network gear), one per line:
//
//   # comment
//   192.0.2.10        a-long-random-secret-for-the-vpn
//   198.51.100.0/24   another-secret
//   2001:db8::/64     a-third-secret
//
// ADDRESS or ADDRESS/PREFIX (IPv4 or IPv6), whitespace, then the shared secret (the rest of the
// line, at least 16 characters). A request's source address picks its client: the most specific
// prefix that contains it wins. A source no line contains is dropped before anything is parsed.
// Pure: parsing and matching only (the server reads the file with readPrivateFile).

import { isIP } from "node:net";

export interface RadiusClient {
  /** The line's address or prefix as written, for the log. */
  readonly name: string;
  readonly secret: Buffer;
}

interface Entry extends RadiusClient {
  readonly family: 4 | 6;
  readonly bits: number;
  readonly network: bigint;
}

export class ClientsFileError extends Error {
  override name = "ClientsFileError";
}

const MIN_SECRET = 16;
const MAX_SECRET = 128;

/** The address as a number of its family; IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4. */
export function addressValue(address: string): { family: 4 | 6; value: bigint } | null {
  const a = address.toLowerCase().replace(/%.*$/, "");
  const mapped = /^::ffff:([0-9.]+)$/.exec(a);
  if (mapped && isIP(mapped[1]!) === 4) return addressValue(mapped[1]!);
  if (isIP(a) === 4) return { family: 4, value: a.split(".").reduce((n, p) => (n << 8n) | BigInt(Number(p)), 0n) };
  if (isIP(a) !== 6) return null;
  let [head, tail] = a.includes("::") ? (a.split("::") as [string, string]) : [a, null as string | null];
  const words = (s: string): number[] => {
    if (s === "") return [];
    const parts = s.split(":");
    const last = parts[parts.length - 1]!;
    // An embedded IPv4 tail (::ffff:1.2.3.4 is handled above; 64:ff9b::1.2.3.4 here).
    if (last.includes(".")) {
      const v = addressValue(last)!.value;
      parts.splice(parts.length - 1, 1, (v >> 16n).toString(16), (v & 0xffffn).toString(16));
    }
    return parts.map((p) => parseInt(p, 16));
  };
  const h = words(head);
  const t = tail === null ? [] : words(tail);
  const all = tail === null ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8) return null;
  return { family: 6, value: all.reduce((n, w) => (n << 16n) | BigInt(w), 0n) };
}

/** Parse the clients file; throws ClientsFileError naming the line. */
export function parseClients(text: string): RadiusClients {
  const entries: Entry[] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `line ${i + 1}`;
    const m = /^(\S+)\s+(.+)$/.exec(line);
    if (!m) throw new ClientsFileError(`${where}: expected "ADDRESS-or-CIDR SECRET"`);
    const [addr, bitsText] = m[1]!.split("/") as [string, string | undefined];
    const parsed = addressValue(addr);
    if (parsed === null || addr.includes("%")) throw new ClientsFileError(`${where}: "${m[1]}" is not an IPv4 or IPv6 address or prefix`);
    const max = parsed.family === 4 ? 32 : 128;
    // ::ffff:a.b.c.d/N would mix families: give IPv4 prefixes as a.b.c.d/N.
    if (parsed.family === 4 && isIP(addr) === 6) throw new ClientsFileError(`${where}: write the IPv4 address ${addr} without ::ffff:`);
    const bits = bitsText === undefined ? max : /^[0-9]{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
    if (!(bits >= 0 && bits <= max)) throw new ClientsFileError(`${where}: the prefix length of "${m[1]}" must be 0-${max}`);
    const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(max - bits);
    if ((parsed.value & ~mask & ((1n << BigInt(max)) - 1n)) !== 0n) throw new ClientsFileError(`${where}: "${m[1]}" has bits set beyond its /${bits} prefix (did you mean the network address?)`);
    const secret = Buffer.from(m[2]!.trim(), "utf8");
    if (secret.length < MIN_SECRET) throw new ClientsFileError(`${where}: the secret of ${m[1]} is shorter than ${MIN_SECRET} characters; use a long random one`);
    if (secret.length > MAX_SECRET) throw new ClientsFileError(`${where}: the secret of ${m[1]} is longer than ${MAX_SECRET} characters`);
    const key = `${parsed.family}/${parsed.value}/${bits}`;
    if (seen.has(key)) throw new ClientsFileError(`${where}: ${m[1]} is listed twice`);
    seen.add(key);
    entries.push({ name: m[1]!, secret, family: parsed.family, bits, network: parsed.value });
  });
  return new RadiusClients(entries);
}

/** An address or prefix (IPv4 or IPv6), as in a clients file or --local-clients. */
export interface Prefix {
  readonly family: 4 | 6;
  readonly bits: number;
  readonly network: bigint;
}

/** "a.b.c.d", "a.b.c.d/N", "2001:db8::/64", "::1": the prefix (host bits cleared), or null. */
export function prefixOf(text: string): Prefix | null {
  const [addr, bitsText] = text.split("/") as [string, string | undefined];
  const parsed = addressValue(addr);
  if (parsed === null || addr.includes("%")) return null;
  const max = parsed.family === 4 ? 32 : 128;
  const bits = bitsText === undefined ? max : /^[0-9]{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= max)) return null;
  return { family: parsed.family, bits, network: (parsed.value >> BigInt(max - bits)) << BigInt(max - bits) };
}

/** Whether two prefixes share an address (one contains the other). */
export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const shift = BigInt((a.family === 4 ? 32 : 128) - Math.min(a.bits, b.bits));
  return a.network >> shift === b.network >> shift;
}

export class RadiusClients {
  private readonly entries: readonly Entry[];

  constructor(entries: readonly Entry[]) {
    // Most specific first, so the first match wins.
    this.entries = [...entries].sort((a, b) => b.bits - a.bits);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The lines (as written) that share an address with `prefix`. */
  overlapping(prefix: Prefix): string[] {
    return this.entries.filter((e) => prefixesOverlap(e, prefix)).map((e) => e.name);
  }

  /** The client whose line contains `address` (most specific prefix), or null. */
  clientOf(address: string): RadiusClient | null {
    const a = addressValue(address);
    if (a === null) return null;
    for (const e of this.entries) {
      if (e.family !== a.family) continue;
      const max = e.family === 4 ? 32 : 128;
      if (e.bits === 0 || a.value >> BigInt(max - e.bits) === e.network >> BigInt(max - e.bits)) return { name: e.name, secret: e.secret };
    }
    return null;
  }
}
