// sshd's effective authentication settings for every kind of connection its configuration
// distinguishes, not just one: every Match block in sshd_config and the files it Includes is
// found, a connection that satisfies it is built (user, group member, address, host, local address
// and port, routing domain), and `sshd -T -C ...` says what sshd would use for it. Used by
// `otpgate setup ssh` (refuse, restore) and `otpgate doctor` (fail).

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { inRoot } from "./setup/paths.js";

/** What every connection must end up with for "public key, then a one-time code". */
export const REQUIRED_EFFECTIVE: readonly [string, string][] = [
  ["authenticationmethods", "publickey,keyboard-interactive"],
  ["passwordauthentication", "no"],
  ["kbdinteractiveauthentication", "yes"],
  ["usepam", "yes"],
];

export interface MatchBlock {
  readonly file: string;
  readonly line: number;
  /** The Match line as written, without the keyword: "Address 10.0.0.0/8". */
  readonly criteria: string;
  /** The keywords the block's body sets (lower case). */
  readonly keywords: readonly string[];
}

export interface Connection {
  readonly user: string;
  readonly host: string;
  readonly addr: string;
  readonly laddr: string;
  readonly lport: string;
  readonly rdomain?: string | undefined;
}

/** sshd_config words: blanks separate, "..." quotes (sshd's argv_split). */
function words(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2]!);
  return out;
}

/** An Include argument as sshd resolves it: relative paths are relative to /etc/ssh. */
export function resolveInclude(root: string, arg: string): string {
  const absolute = arg.startsWith("/") ? arg : `/etc/ssh/${arg}`;
  // Under --root the path may already point inside the root (a test's own config).
  return root !== "/" && absolute.startsWith(root.replace(/\/$/, "") + "/") ? absolute : inRoot(root, absolute);
}

/** glob(3) as sshd's Include uses it: *, ? and [...] classes ([!...] negated); never across '/'. */
export function globRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      let j = i + 1;
      if (pattern[j] === "!" || pattern[j] === "^") j++;
      if (pattern[j] === "]") j++;
      while (j < pattern.length && pattern[j] !== "]") j++;
      if (j >= pattern.length) {
        re += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, j);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = j;
    } else if (c === "\\" && i + 1 < pattern.length) re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    else re += c.replace(/[.+^${}()|\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** sshd's match_pattern: only * and ? are special. */
function sshdPattern(pattern: string, caseless = false): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    caseless ? "i" : "",
  );
}

/** glob(3) for the patterns sshd accepts in Include (wildcards in any component), sorted. */
function expandGlob(path: string): string[] {
  const parts = path.split("/").filter(Boolean);
  let found = ["/"];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of found) {
      if (!/[*?[]/.test(part)) {
        next.push(join(dir, part));
        continue;
      }
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => (!n.startsWith(".") || part.startsWith(".")) && globRegExp(part).test(n));
      } catch {
        names = [];
      }
      next.push(...names.sort().map((n) => join(dir, n)));
    }
    found = next;
  }
  return found.filter((p) => existsSync(p) && statSync(p).isFile());
}

/**
 * Keywords that decide how a connection authenticates: a Match block setting one of them must be
 * evaluated with a connection that matches it, or refused (fail closed).
 */
export const AUTH_KEYWORDS: ReadonlySet<string> = new Set([
  "authenticationmethods",
  "passwordauthentication",
  "kbdinteractiveauthentication",
  "challengeresponseauthentication",
  "usepam",
  "pubkeyauthentication",
  "permitemptypasswords",
  "hostbasedauthentication",
  "gssapiauthentication",
  "kerberosauthentication",
  "authorizedkeysfile",
  "authorizedkeyscommand",
  "authorizedkeyscommanduser",
  "authorizedprincipalsfile",
  "authorizedprincipalscommand",
  "authorizedprincipalscommanduser",
  "trustedusercakeys",
  "revokedkeys",
  "permitrootlogin",
  "pubkeyacceptedalgorithms",
  "pubkeyacceptedkeytypes",
  "pubkeyauthoptions",
  "hostbasedacceptedalgorithms",
  "maxauthtries",
  "include",
]);

/** Every Match block in the configuration file and the files it Includes (recursively), with the keywords its body sets. */
export function findMatchBlocks(root: string, configPath: string): MatchBlock[] {
  const blocks: MatchBlock[] = [];
  const seen = new Set<string>();
  const visit = (file: string, depth: number) => {
    if (depth > 16 || seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    let current: { file: string; line: number; criteria: string; keywords: string[] } | null = null;
    readFileSync(file, "latin1")
      .split("\n")
      .forEach((raw, i) => {
        const m = /^\s*([A-Za-z-]+)(?:\s*=\s*|\s+)(.*?)\s*$/.exec(raw.replace(/#.*$/, ""));
        if (!m) return;
        const key = m[1]!.toLowerCase();
        if (key === "match") {
          current = { file, line: i + 1, criteria: m[2]!, keywords: [] };
          blocks.push(current);
          return;
        }
        if (current) (current as { keywords: string[] }).keywords.push(key);
        if (key === "include") for (const arg of words(m[2]!)) for (const f of expandGlob(resolveInclude(root, arg))) visit(f, depth + 1);
      });
  };
  visit(configPath, 0);
  return blocks;
}

/** sshd's match_pattern_list: some positive pattern matches and no negated one does. */
export function matchesList(value: string, list: string, caseless = false): boolean {
  let positive = false;
  for (const p of list.split(",").filter(Boolean)) {
    const negated = p.startsWith("!");
    if (sshdPattern(negated ? p.slice(1) : p, caseless).test(value)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

const ipv4 = (a: string): number | null => {
  const o = a.split(".");
  if (o.length !== 4 || o.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) return null;
  return o.reduce((n, x) => n * 256 + Number(x), 0);
};
const dotted = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

/** One address pattern (sshd's addr_match_list): a CIDR block or a wildcard pattern. */
function addressMatches(addr: string, pattern: string): boolean {
  const [net = "", bits] = pattern.split("/");
  if (bits === undefined) return sshdPattern(pattern).test(addr);
  const a = ipv4(addr);
  const n = ipv4(net);
  if (a === null || n === null) return addr.includes(":") && net.includes(":") && addr.toLowerCase().startsWith(net.toLowerCase().replace(/::$/, ":"));
  const size = 2 ** (32 - Math.min(32, Number(bits)));
  return Math.floor(a / size) === Math.floor(n / size);
}

export function matchesAddressList(addr: string, list: string): boolean {
  let positive = false;
  for (const p of list.split(",").filter(Boolean)) {
    const negated = p.startsWith("!");
    if (addressMatches(addr, negated ? p.slice(1) : p)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** Values a pattern may match, the most plausible first (each is checked against the whole list). */
function candidates(pattern: string, kind: "name" | "address"): string[] {
  if (kind === "address") {
    const [addr = "", bits] = pattern.split("/");
    if (addr.includes(":")) return [bits ? addr.replace(/::$/, "::1") : addr.replace(/[*?]/g, "1"), addr.replace(/[*?]/g, "2"), addr.replace(/::$/, "::2")];
    const n = bits !== undefined ? ipv4(addr) : null;
    if (n !== null) {
      const size = 2 ** (32 - Math.min(32, Number(bits)));
      const first = Math.floor(n / size) * size;
      return size === 1 ? [dotted(first)] : [first + 1, first + 2, first + size - 2, first + Math.floor(size / 2) + 1].map(dotted);
    }
    return ["1", "2", "200", "9"].map((fill) => {
      const octets = addr.replace(/[*?]+/g, fill).split(".");
      while (octets.length < 4) octets.push(fill);
      return octets.join(".");
    });
  }
  return ["x", "otpgate-probe", "", "q7"].map((fill) => pattern.replace(/\*/g, fill).replace(/\?/g, fill === "" ? "z" : fill.slice(0, 1)));
}

export interface GroupLookup {
  /** A user that is a member of a group whose name matches the pattern, or null. */
  memberOf(pattern: string): string | null;
  /** The names of the groups a user is in (primary and supplementary), as sshd's Match Group sees them. */
  groupsOf(user: string): string[];
}

export const systemGroups: GroupLookup = {
  memberOf(pattern) {
    const re = sshdPattern(pattern);
    const groups = spawnSync("getent", ["group"], { encoding: "utf8" })
      .stdout.split("\n")
      .map((l) => l.split(":"))
      .filter((g) => g[0] && re.test(g[0]));
    for (const g of groups) {
      const member = (g[3] ?? "").split(",").find(Boolean);
      if (member) return member;
      const primary = spawnSync("getent", ["passwd"], { encoding: "utf8" })
        .stdout.split("\n")
        .map((l) => l.split(":"))
        .find((p) => p[3] === g[2]);
      if (primary?.[0]) return primary[0];
    }
    return null;
  },
  groupsOf(user) {
    const r = spawnSync("id", ["-Gn", "--", user], { encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim().split(/\s+/).filter(Boolean) : [];
  },
};

interface Criterion {
  readonly key: string;
  readonly list: string;
}

/** Does the connection satisfy every criterion (by sshd's matching rules)? */
function satisfies(c: Connection, criteria: readonly Criterion[], groups: GroupLookup): boolean {
  return criteria.every(({ key, list }) => {
    switch (key) {
      case "user":
        return matchesList(c.user, list);
      case "group": {
        const mine = groups.groupsOf(c.user);
        const negatives = list
          .split(",")
          .filter((p) => p.startsWith("!"))
          .map((p) => p.slice(1));
        const positives = list.split(",").filter((p) => p && !p.startsWith("!"));
        return mine.some((g) => positives.some((p) => sshdPattern(p).test(g))) && !mine.some((g) => negatives.some((p) => sshdPattern(p).test(g)));
      }
      case "host":
        return matchesList(c.host, list, true);
      case "address":
        return matchesAddressList(c.addr, list);
      case "localaddress":
        return matchesAddressList(c.laddr, list);
      case "localport":
        return list.split(",").includes(c.lport);
      case "rdomain":
        return matchesList(c.rdomain ?? "", list);
      default:
        return false;
    }
  });
}

/**
 * Connections that satisfy a Match line (one per positive alternative), each checked against the
 * whole line by sshd's matching rules (negations included); or why none can be built, e.g. a Group
 * without members that can be listed (empty today; LDAP/sssd without enumeration).
 */
export function connectionsFor(criteria: string, base: Connection, groups: GroupLookup): { connections: Connection[]; untestable: string | null } {
  const w = words(criteria);
  const parsed: Criterion[] = [];
  const variants: Partial<Connection>[][] = [];
  for (let i = 0; i < w.length; i++) {
    const key = w[i]!.toLowerCase();
    if (key === "all") continue;
    const list = w[++i];
    if (list === undefined) return { connections: [], untestable: `"Match ${criteria}" is incomplete` };
    const positive = list.split(",").filter((p) => p && !p.startsWith("!"));
    // sshd's pattern lists need a positive match: a list of negations alone matches no connection.
    if (positive.length === 0 && ["user", "group", "host", "address", "localaddress", "rdomain"].includes(key)) return { connections: [], untestable: null };
    const within = (value: string, kind: "name" | "address") => (kind === "address" ? matchesAddressList(value, list) : matchesList(value, list, key === "host"));
    const pick = (kind: "name" | "address", field: keyof Connection, probe: string): Partial<Connection>[] => {
      const values = positive.length ? positive.map((p) => candidates(p, kind).find((v) => v && within(v, kind))) : [probe];
      return values.filter((v): v is string => v !== undefined).map((v) => ({ [field]: v }) as Partial<Connection>);
    };
    let options: Partial<Connection>[];
    switch (key) {
      case "user":
        options = positive.length ? pick("name", "user", "") : [{ user: "otpgate-probe" }];
        break;
      case "group":
        options = positive
          .map((p) => groups.memberOf(p))
          .filter((m): m is string => m !== null)
          .map((user) => ({ user }));
        break;
      case "host":
        options = positive.length ? pick("name", "host", "") : [{ host: "otpgate-probe.invalid" }];
        break;
      case "address":
        options = positive.length ? pick("address", "addr", "") : [{ addr: "203.0.113.7" }];
        break;
      case "localaddress":
        options = positive.length ? pick("address", "laddr", "") : [{ laddr: "203.0.113.8" }];
        break;
      case "localport":
        options = positive.length ? positive.map((p) => ({ lport: p })) : [{ lport: "2" }];
        break;
      case "rdomain":
        options = positive.length ? pick("name", "rdomain", "") : [{ rdomain: "otpgate-probe" }];
        break;
      default:
        return { connections: [], untestable: `"Match ${criteria}": ${w[i - 1]} cannot be evaluated with sshd -T` };
    }
    parsed.push({ key, list });
    if (options.length === 0) {
      return {
        connections: [],
        untestable: `"Match ${criteria}": no ${w[i - 1]} matching "${list}" can be found to test it with${key === "group" ? " (no member of such a group can be listed: an empty group, or LDAP/sssd without enumeration)" : ""}`,
      };
    }
    variants.push(options);
  }
  // One connection per alternative of each criterion, the other criteria at their first alternative.
  const first = variants.reduce<Connection>((c, v) => ({ ...c, ...v[0]! }), base);
  const all = [first];
  for (const v of variants) for (const alt of v.slice(1)) all.push({ ...first, ...alt });
  const matching = all.filter((c) => satisfies(c, parsed, groups));
  if (matching.length === 0) return { connections: [], untestable: `"Match ${criteria}": no connection built for it satisfies every criterion` };
  return { connections: matching, untestable: null };
}

export const describeConnection = (c: Connection): string => `user=${c.user},host=${c.host},addr=${c.addr},laddr=${c.laddr},lport=${c.lport}${c.rdomain ? `,rdomain=${c.rdomain}` : ""}`;

/**
 * Every connection kind whose effective settings are not "publickey,keyboard-interactive,
 * password no": one message per offending connection, naming the Match block (file:line).
 */
export function sshdConnectionProblems(
  sshd: string,
  root: string,
  configPath: string,
  user: string | undefined,
  options: { readonly matchOnly?: boolean; readonly groups?: GroupLookup } = {},
): string[] {
  const groups = options.groups ?? systemGroups;
  const base: Connection = { user: user ?? "root", host: "localhost", addr: "127.0.0.1", laddr: "127.0.0.1", lport: "22" };
  const cases: { connection: Connection; why: string }[] = options.matchOnly ? [] : [{ connection: base, why: "a connection that matches no Match block" }];
  const problems: string[] = [];
  for (const block of findMatchBlocks(root, configPath)) {
    const where = `"Match ${block.criteria}" (${block.file} line ${block.line})`;
    const { connections, untestable } = connectionsFor(block.criteria, base, groups);
    // Fail closed: a block that changes how connections authenticate and that cannot be tested is refused.
    const auth = block.keywords.filter((k) => AUTH_KEYWORDS.has(k));
    if (untestable && auth.length)
      problems.push(
        `${untestable}: otpgate cannot prove that ${where}, which sets ${[...new Set(auth)].join(", ")}, keeps key + code; remove it, or check it by hand and move those settings out of it`,
      );
    for (const c of connections) cases.push({ connection: c, why: `a connection matching ${where}` });
  }
  for (const { connection, why } of cases) {
    const r = spawnSync(sshd, ["-T", "-f", configPath, "-C", describeConnection(connection)], { encoding: "utf8" });
    if (r.status !== 0) {
      problems.push(`sshd -T fails for ${why}: ${(r.stderr || r.stdout).trim()}`);
      continue;
    }
    const effective = new Map(r.stdout.split("\n").map((l) => [l.split(" ")[0]!, l.slice(l.indexOf(" ") + 1)] as [string, string]));
    const wrong = REQUIRED_EFFECTIVE.filter(([k, v]) => effective.get(k) !== v).map(([k]) => `${k} ${effective.get(k) ?? "(unset)"}`);
    if (wrong.length)
      problems.push(`for ${why}, tested as ${describeConnection(connection)}, sshd would use ${wrong.join(", ")} (needed: ${REQUIRED_EFFECTIVE.map(([k, v]) => `${k} ${v}`).join(", ")})`);
  }
  return problems;
}
