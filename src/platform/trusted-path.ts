// What root runs must be changeable by root only, like sshd's StrictModes: node, the otpgate
// launcher, every file node loads from the otpgate package, and every directory on the way to
// them. Each path component (every symbolic link itself, then where it points) must be owned by
// root and writable by nobody else: a user who owns any directory on the way can swap what is
// below it, and a sticky world-writable directory such as /tmp still lets anyone create names
// in it. Used by doctor (report) and setup (refuse) before a root PAM line points at otpgate.

import { lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export interface TrustProblem {
  /** The path component (a directory, file or symbolic link) that someone other than root can change. */
  readonly path: string;
  /** What is wrong with it, e.g. "owned by uid 1000" or "world-writable (mode 1777)". */
  readonly reason: string;
  /** A command or step that fixes it. */
  readonly fix: string;
}

/**
 * Packages the bundles load from node_modules at run time: the bundle's `external` list in
 * scripts/build.mjs (a unit test keeps the two the same).
 */
export const RUNTIME_PACKAGES: readonly string[] = ["@node-rs/argon2"];

/**
 * The only fix: never repair an installation in place. Whoever owned a file can keep a write
 * descriptor open across a change of owner or mode and rewrite the bundle afterwards, and a
 * directory a user owned keeps the files and hard links the user put in it. New files, then.
 */
export const REINSTALL_FRESH =
  "do not repair it in place (a user who could write it may still hold an open descriptor, or files and hard links in it): reinstall fresh as root from a packed tarball into a prefix only root can write (npm pack && npm install -g ./otpgate-*.tgz), run otpgate setup again, then remove the old tree";
const MAX_LINKS = 40;

const octal = (mode: number) => "0" + (mode & 0o7777).toString(8);

/** Problems of one already lstat'ed component; none when root owns it and nobody else can write it. */
function statProblems(path: string, st: Stats): TrustProblem[] {
  const problems: TrustProblem[] = [];
  if (st.uid !== 0) problems.push({ path, reason: `owned by uid ${st.uid}, not root`, fix: REINSTALL_FRESH });
  if (st.isSymbolicLink()) return problems; // a link's own mode bits are always 0777 and unused
  if ((st.mode & 0o002) !== 0) {
    const sticky = (st.mode & 0o1000) !== 0 && st.isDirectory();
    problems.push({
      path,
      reason: `world-writable (mode ${octal(st.mode)})${sticky ? "; sticky, but anyone can still create names in it" : ""}`,
      fix: sticky ? `do not run otpgate from under ${path}; ${REINSTALL_FRESH}` : REINSTALL_FRESH,
    });
  } else if ((st.mode & 0o020) !== 0) {
    problems.push({ path, reason: `group-writable (mode ${octal(st.mode)}, group ${st.gid})`, fix: REINSTALL_FRESH });
  }
  return problems;
}

interface Visit {
  readonly path: string;
  readonly st: Stats;
}

interface PathWalk {
  /** Every component lstat'ed on the way, "/" first, each symbolic link and then its target's. */
  readonly visited: Visit[];
  /** The resolved path, or null when the walk stopped early. */
  readonly resolved: string | null;
  /** Why the walk stopped early (at most one). */
  readonly problems: TrustProblem[];
}

/**
 * The one path walk: each component of `path` with lstat, symbolic links resolved one at a time
 * (the link is visited, then the components of its target), ".." applied to the resolved path.
 * A missing component is a problem (`missing: "problem"`) or simply ends the walk ("stop").
 */
function walkPath(path: string, missing: "problem" | "stop"): PathWalk {
  const visited: Visit[] = [];
  const stop = (problem: TrustProblem | null): PathWalk => ({ visited, resolved: null, problems: problem ? [problem] : [] });
  if (!path.startsWith("/")) return stop({ path, reason: "not an absolute path", fix: "give an absolute path" });
  const pending = path.split("/").filter((p) => p !== "" && p !== ".");
  let current = "/";
  let links = 0;
  visited.push({ path: "/", st: lstatSync("/") });
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === "..") {
      current = dirname(current);
      continue;
    }
    const next = join(current, name);
    let st: Stats;
    try {
      st = lstatSync(next);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && missing === "stop") return stop(null);
      return stop({ path: next, reason: code === "ENOENT" ? "missing" : `unreadable (${code})`, fix: `check the path (${path})` });
    }
    visited.push({ path: next, st });
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return stop({ path, reason: "in a loop of symbolic links", fix: "point it at the file itself" });
      const target = readlinkSync(next);
      if (target.startsWith("/")) current = "/";
      pending.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
      continue;
    }
    if (pending.length > 0 && !st.isDirectory()) return stop({ path: next, reason: "not a directory", fix: `check the path (${path})` });
    current = next;
  }
  return { visited, resolved: current, problems: [] };
}

/** Walks the state of a set of checks, so each component is examined (and reported) once. */
class Walk {
  readonly problems: TrustProblem[] = [];
  private readonly seen = new Set<string>();

  private add(path: string, st: Stats): void {
    if (this.seen.has(path)) return;
    this.seen.add(path);
    this.problems.push(...statProblems(path, st));
  }

  /**
   * Every component of `path`, resolving symbolic links one at a time (the link is checked, then
   * the components of its target). Returns the resolved path, or null when it cannot be resolved.
   */
  components(path: string): string | null {
    const walk = walkPath(path, "problem");
    for (const v of walk.visited) this.add(v.path, v.st);
    this.problems.push(...walk.problems);
    return walk.resolved;
  }

  /** Everything below a directory (already checked itself), following links through components(). */
  tree(dir: string, depth = 0): void {
    if (depth > 20) return;
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      const path = join(dir, name);
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) {
        const real = this.components(path);
        if (real && lstatSync(real).isDirectory()) this.tree(real, depth + 1);
        continue;
      }
      this.add(path, st);
      if (st.isDirectory()) this.tree(path, depth + 1);
    }
  }
}

/** Problems of one path: each of its components, symbolic links and their targets included. */
export function pathProblems(path: string): TrustProblem[] {
  const walk = new Walk();
  walk.components(path);
  return walk.problems;
}

export interface InstallPaths {
  /** The Node.js binary the PAM line (or service) runs. */
  readonly node: string;
  /** otpgate's launcher (dist/otpgate.cjs), as the PAM line names it. */
  readonly launcher: string;
}

/**
 * Problems of an installation root is about to run: every component of node and of the launcher,
 * every file and directory in the launcher's directory (the bundles it loads, lazily too), and
 * the packages the bundles load from node_modules (RUNTIME_PACKAGES), found as Node would find them.
 */
export function installProblems(paths: InstallPaths): TrustProblem[] {
  const walk = new Walk();
  walk.components(paths.node);
  const launcher = walk.components(paths.launcher);
  if (launcher) {
    const dist = dirname(launcher);
    walk.tree(dist);
    const lookup = createRequire(join(dist, "otpgate.cjs")).resolve.paths("x") ?? [];
    for (const name of RUNTIME_PACKAGES) {
      const top = name.startsWith("@") ? name.split("/")[0]! : name;
      for (const dir of lookup) {
        const candidate = join(dir, name);
        try {
          lstatSync(candidate);
        } catch {
          continue;
        }
        const real = walk.components(join(dir, top));
        if (real) walk.tree(real);
        break;
      }
    }
  }
  return walk.problems;
}

/** "PATH: reason" lines, for a refusal message. */
export function describeProblems(problems: readonly TrustProblem[]): string {
  return problems.map((p) => `${p.path} is ${p.reason}`).join("; ");
}

export interface StateLocationOptions {
  /** Who may own each component: root and the gateway's own user. */
  readonly owners: readonly number[];
}

/**
 * Problems of where a server keeps its own state (the gateway's keys, sessions, passwords,
 * invitations): every existing component of `path` (symbolic links followed one at a time, each
 * link checked, then its target) must belong to one of `owners` and be writable by nobody else;
 * otherwise whoever owns or can write a directory on the way can delete, replace or link what is
 * below it. A sticky world-writable directory (/tmp) owned by root may be on the way, not where
 * the files are created: only the directory below it keeps others out. Missing components end the
 * walk (the server creates them, inside the last directory checked). Fixes are chown/chmod.
 */
export function stateLocationProblems(path: string, options: StateLocationOptions): TrustProblem[] {
  const problems: TrustProblem[] = [];
  if (!path.startsWith("/")) return [{ path, reason: "not an absolute path", fix: "give an absolute path" }];
  const owners = new Set(options.owners);
  const ownerText = options.owners.map((u) => (u === 0 ? "root" : `uid ${u}`)).join(" or ");
  const chownTo = options.owners.includes(0) ? "root" : String(options.owners[0]);
  const seen = new Set<string>();
  const judge = (p: string, st: Stats, last: boolean) => {
    if (seen.has(p)) return;
    seen.add(p);
    if (!owners.has(st.uid)) problems.push({ path: p, reason: `owned by uid ${st.uid}, not ${ownerText}`, fix: `chown ${chownTo} ${p}, or keep the file in a directory only ${ownerText} can write` });
    if (st.isSymbolicLink()) return;
    const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0 && st.uid === 0;
    if ((st.mode & 0o002) !== 0 && !(sticky && !last)) {
      problems.push({
        path: p,
        reason: `world-writable (mode ${octal(st.mode)})${sticky ? "; sticky, but anyone can create names in it" : ""}`,
        fix: sticky ? `use a directory of its own inside ${p} (mkdir -m 700)` : `chmod go-w ${p}`,
      });
    } else if ((st.mode & 0o020) !== 0 && !(sticky && !last)) {
      problems.push({ path: p, reason: `group-writable (mode ${octal(st.mode)}, group ${st.gid})`, fix: `chmod go-w ${p}` });
    }
  };
  const walk = walkPath(path, "stop");
  problems.push(...walk.problems);
  const visited = walk.visited;
  // The last existing directory is where names are created: a sticky /tmp is not enough there.
  let lastDir: { path: string; st: Stats } | null = null;
  for (const v of visited) if (v.st.isDirectory()) lastDir = v;
  for (const v of visited) judge(v.path, v.st, v === lastDir);
  return problems;
}
