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

function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
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
        names = readdirSync(dir).filter((n) => !n.startsWith(".") && globToRegExp(part).test(n));
      } catch {
        names = [];
      }
      next.push(...names.sort().map((n) => join(dir, n)));
    }
    found = next;
  }
  return found.filter((p) => existsSync(p) && statSync(p).isFile());
}

/** Every Match block in the configuration file and the files it Includes (recursively). */
export function findMatchBlocks(root: string, configPath: string): MatchBlock[] {
  const blocks: MatchBlock[] = [];
  const seen = new Set<string>();
  const visit = (file: string, depth: number) => {
    if (depth > 16 || seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    readFileSync(file, "latin1").split("\n").forEach((raw, i) => {
      const m = /^\s*([A-Za-z]+)(?:\s*=\s*|\s+)(.*?)\s*$/.exec(raw.replace(/#.*$/, ""));
      if (!m) return;
      const key = m[1]!.toLowerCase();
      if (key === "match") blocks.push({ file, line: i + 1, criteria: m[2]! });
      else if (key === "include") for (const arg of words(m[2]!)) for (const f of expandGlob(resolveInclude(root, arg))) visit(f, depth + 1);
    });
  };
  visit(configPath, 0);
  return blocks;
}

/** A value that a pattern (sshd's match_pattern: * and ?, optional /bits for addresses) matches. */
function sample(pattern: string, kind: "name" | "address"): string {
  if (kind === "address") {
    const [addr = "", bits] = pattern.split("/");
    if (addr.includes(":")) return bits ? addr.replace(/::$/, "::1") : addr.replace(/[*?]/g, "1");
    const octets = addr.replace(/[*?]+/g, "1").split(".");
    while (octets.length < 4) octets.push("1");
    if (bits !== undefined && Number(bits) < 32) octets[3] = String(Math.min(254, Number(octets[3] ?? 0) + 1));
    return octets.join(".");
  }
  return pattern.replace(/[*?]/g, "x");
}

export interface GroupLookup {
  /** A user that is a member of a group whose name matches the pattern, or null. */
  memberOf(pattern: string): string | null;
}

export const systemGroups: GroupLookup = {
  memberOf(pattern) {
    const re = globToRegExp(pattern);
    const groups = spawnSync("getent", ["group"], { encoding: "utf8" }).stdout.split("\n").map((l) => l.split(":")).filter((g) => g[0] && re.test(g[0]));
    for (const g of groups) {
      const member = (g[3] ?? "").split(",").find(Boolean);
      if (member) return member;
      const primary = spawnSync("getent", ["passwd"], { encoding: "utf8" }).stdout.split("\n").map((l) => l.split(":")).find((p) => p[3] === g[2]);
      if (primary?.[0]) return primary[0];
    }
    return null;
  },
};

/** Connections that satisfy a Match line (one per positive alternative), or why none can be built. */
export function connectionsFor(criteria: string, base: Connection, groups: GroupLookup): { connections: Connection[]; untestable: string | null } {
  const w = words(criteria);
  const variants: Connection[][] = [];
  for (let i = 0; i < w.length; i++) {
    const key = w[i]!.toLowerCase();
    if (key === "all") continue;
    const value = w[++i];
    if (value === undefined) return { connections: [], untestable: `"Match ${criteria}" is incomplete` };
    const positive = value.split(",").filter((p) => p && !p.startsWith("!"));
    const alternatives = (pick: (p: string) => Partial<Connection> | null, none: Partial<Connection>) => (positive.length ? positive.map(pick) : [none]);
    let options: (Partial<Connection> | null)[];
    switch (key) {
      case "user":
        options = alternatives((p) => ({ user: sample(p, "name") }), { user: "otpgate-probe" });
        break;
      case "group":
        options = alternatives((p) => {
          const member = groups.memberOf(p);
          return member ? { user: member } : null;
        }, { user: "otpgate-probe" });
        break;
      case "host":
        options = alternatives((p) => ({ host: sample(p, "name") }), { host: "otpgate-probe.invalid" });
        break;
      case "address":
        options = alternatives((p) => ({ addr: sample(p, "address") }), { addr: "203.0.113.7" });
        break;
      case "localaddress":
        options = alternatives((p) => ({ laddr: sample(p, "address") }), { laddr: "203.0.113.8" });
        break;
      case "localport":
        options = alternatives((p) => ({ lport: p }), { lport: "2" });
        break;
      case "rdomain":
        options = alternatives((p) => ({ rdomain: p }), { rdomain: "otpgate-probe" });
        break;
      default:
        return { connections: [], untestable: `"Match ${criteria}": ${w[i - 1]} cannot be evaluated with sshd -T` };
    }
    const usable = options.filter((o): o is Partial<Connection> => o !== null);
    if (usable.length === 0) return { connections: [], untestable: null }; // e.g. a group nobody is in: no connection matches it today
    variants.push(usable.map((o) => ({ ...base, ...o })));
  }
  // One connection per alternative of each criterion, the other criteria at their first alternative.
  const first = variants.reduce<Connection>((c, v) => ({ ...c, ...diff(base, v[0]!) }), base);
  const all = [first];
  for (const v of variants) for (const alt of v.slice(1)) all.push({ ...first, ...diff(base, alt) });
  return { connections: all, untestable: null };
}

function diff(base: Connection, c: Connection): Partial<Connection> {
  return Object.fromEntries(Object.entries(c).filter(([k, v]) => base[k as keyof Connection] !== v)) as Partial<Connection>;
}

export const describeConnection = (c: Connection): string => `user=${c.user},host=${c.host},addr=${c.addr},laddr=${c.laddr},lport=${c.lport}${c.rdomain ? `,rdomain=${c.rdomain}` : ""}`;

/**
 * Every connection kind whose effective settings are not "publickey,keyboard-interactive,
 * password no": one message per offending connection, naming the Match block (file:line).
 */
export function sshdConnectionProblems(sshd: string, root: string, configPath: string, user: string | undefined, options: { readonly matchOnly?: boolean; readonly groups?: GroupLookup } = {}): string[] {
  const groups = options.groups ?? systemGroups;
  const base: Connection = { user: user ?? "root", host: "localhost", addr: "127.0.0.1", laddr: "127.0.0.1", lport: "22" };
  const cases: { connection: Connection; why: string }[] = options.matchOnly ? [] : [{ connection: base, why: "a connection that matches no Match block" }];
  const problems: string[] = [];
  for (const block of findMatchBlocks(root, configPath)) {
    const where = `"Match ${block.criteria}" (${block.file} line ${block.line})`;
    const { connections, untestable } = connectionsFor(block.criteria, base, groups);
    if (untestable) problems.push(`${untestable}: otpgate cannot prove that ${where} keeps the code; remove it or check it by hand`);
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
    if (wrong.length) problems.push(`for ${why}, tested as ${describeConnection(connection)}, sshd would use ${wrong.join(", ")} (needed: ${REQUIRED_EFFECTIVE.map(([k, v]) => `${k} ${v}`).join(", ")})`);
  }
  return problems;
}
