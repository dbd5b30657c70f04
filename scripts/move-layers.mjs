#!/usr/bin/env node
// The move plan of the architecture test (test/unit/architecture.test.ts), done mechanically: git mv
// every file below to its layer, rewrite every relative import in src, test, bench and scripts that
// pointed at a moved file (or from a moved file), update the paths in README.md, docs/ and the
// architecture test, and empty its EXPECTED_BEFORE_MOVE list. Idempotent: a second run changes
// nothing. Run it from the repository root once every branch is merged, then: npm run typecheck,
// npm test, commit.
//
//   node scripts/move-layers.mjs            do it
//   node scripts/move-layers.mjs --dry-run  print the moves only
//
// Where things go, and why:
//   src/admin/      system administration: reads and writes sshd's and PAM's configuration, runs
//                   sshd -T, pamtester and the like, checks the installation (setup, doctor and their
//                   helpers, account-status as doctor's and status's report). It may use Node and
//                   platform, read stores and call services; no adapter imports are allowed in it.
//   src/stores/     where a user's account lives: resolve-account (user name + pattern -> state file
//                   and its store) and gateway-revoke (the gateway's sessions file) build stores,
//                   which only stores and composition roots may do.
//   src/adapters/cli/commands/account-options.ts: opening the account of an account command is
//                   wiring (it builds the store), so it sits with the commands, the CLI's roots.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/** [from, to]: a file, or a directory (trailing /) moved with everything in it. */
export const MOVES = [
  ["src/services/setup/", "src/admin/setup/"],
  ["src/services/doctor.ts", "src/admin/doctor.ts"],
  ["src/services/sshd-effective.ts", "src/admin/sshd-effective.ts"],
  ["src/services/sshd-reload.ts", "src/admin/sshd-reload.ts"],
  ["src/services/pam-stack.ts", "src/admin/pam-stack.ts"],
  ["src/services/radius-hardening.ts", "src/admin/radius-hardening.ts"],
  ["src/services/rstudio-chain.ts", "src/admin/rstudio-chain.ts"],
  // fix/h1: doctor's check of the RADIUS backend's PAM stack (uses pam-stack).
  ["src/services/radius-stack.ts", "src/admin/radius-stack.ts"],
  ["src/services/account-status.ts", "src/admin/account-status.ts"],
  ["src/services/server-layout.ts", "src/admin/server-layout.ts"],
  ["src/services/resolve-account.ts", "src/stores/resolve-account.ts"],
  ["src/services/gateway-revoke.ts", "src/stores/gateway-revoke.ts"],
  ["src/adapters/cli/account-options.ts", "src/adapters/cli/commands/account-options.ts"],
];

const CODE_DIRS = ["src", "test", "bench", "scripts"];
const CODE_FILE = /\.(ts|mts|cts|mjs|cjs|js)$/;
const TEXT_FILES = ["README.md", "docs"];
const ARCH_TEST = "test/unit/architecture.test.ts";

const dryRun = process.argv.includes("--dry-run");
const log = (line) => console.log(line);

function walk(dir, keep) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "build" || e.name === "dist" ? [] : walk(path, keep);
    return keep(path) ? [path] : [];
  });
}

/** Every file-level move: directories expanded to the files in them now (old path -> new path). */
function fileMoves() {
  const pairs = [];
  for (const [from, to] of MOVES) {
    if (from.endsWith("/")) {
      const files = new Set([...walk(from, () => true).map((f) => relative(from, f)), ...walk(to, () => true).map((f) => relative(to, f))]);
      for (const f of files) pairs.push([join(from, f), join(to, f)]);
    } else pairs.push([from, to]);
  }
  return pairs;
}

/** Step 1: git mv what is still at its old place; returns the new paths of what moved now. */
function moveFiles(pairs) {
  const moved = new Set();
  for (const [from, to] of pairs) {
    const there = existsSync(from);
    if (there && existsSync(to)) throw new Error(`both ${from} and ${to} exist: merge them by hand, then run this again`);
    if (!there) continue;
    log(`git mv ${from} ${to}`);
    if (!dryRun) {
      execFileSync("mkdir", ["-p", dirname(to)]);
      execFileSync("git", ["mv", from, to], { stdio: "inherit" });
    }
    moved.add(to);
  }
  // A directory moved as a whole leaves nothing behind.
  if (!dryRun) for (const [from] of MOVES) if (from.endsWith("/") && existsSync(from) && walk(from, () => true).length === 0) rmSync(from, { recursive: true });
  return moved;
}

/** The file a relative path names, if it exists (x.js is compiled from x.ts). */
function existing(path) {
  return [path, path.replace(/\.js$/, ".ts")].find((c) => existsSync(c) && statSync(c).isFile()) ?? null;
}

/** A specifier from `fromFile` to `target` in the original's style (.js names the .ts, ./ prefix). */
function specifier(fromFile, target, original) {
  let spec = relative(dirname(fromFile), target);
  if (!spec.startsWith(".")) spec = `./${spec}`;
  if (/\.js$/.test(original)) spec = spec.replace(/\.ts$/, ".js");
  return spec;
}

const IMPORT = /(\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']+)\2/g;

/**
 * Step 2: relative imports (from, import(), export from, require, side-effect import). A file moved
 * in this run resolves its imports from where it was; every file then points at where the target
 * is now. A file merged later with imports relative to a moved file's old place is fixed the same
 * way on a second run.
 */
function rewriteImports(pairs, movedNow) {
  const oldOf = new Map(pairs.map(([from, to]) => [to, from]));
  const newOf = new Map(pairs);
  const follow = (path) => {
    const ts = path.replace(/\.js$/, ".ts");
    if (newOf.has(ts) && !existsSync(ts)) return newOf.get(ts);
    if (newOf.has(path) && !existsSync(path)) return newOf.get(path);
    return existing(path);
  };
  let changedFiles = 0;
  // The architecture test quotes imports in its own checks' strings: not imports of its own.
  for (const file of CODE_DIRS.flatMap((d) => walk(d, (p) => CODE_FILE.test(p) && p !== ARCH_TEST))) {
    const source = readFileSync(file, "utf8");
    const unresolved = [];
    const next = source.replace(IMPORT, (all, lead, quote, spec) => {
      const bases = movedNow.has(file) ? [oldOf.get(file)] : [file, ...(oldOf.has(file) ? [oldOf.get(file)] : [])];
      for (const base of bases) {
        const target = follow(normalize(join(dirname(base), spec)));
        if (!target) continue;
        if (base === file && target === existing(normalize(join(dirname(file), spec)))) return all; // already right
        return `${lead}${quote}${specifier(file, target, spec)}${quote}`;
      }
      unresolved.push(spec);
      return all;
    });
    if (unresolved.length) console.error(`warning: ${file}: cannot resolve ${unresolved.join(", ")} (left as it is)`);
    if (next !== source) {
      log(`imports rewritten in ${file}`);
      writeFileSync(file, next);
      changedFiles++;
    }
  }
  return changedFiles;
}

/** Step 3: paths in prose (README, docs) and in the architecture test; its allowlist emptied. */
function rewriteText(pairs) {
  let changed = 0;
  const files = [...TEXT_FILES.flatMap((p) => (existsSync(p) && statSync(p).isDirectory() ? walk(p, (f) => f.endsWith(".md")) : existsSync(p) ? [p] : [])), ARCH_TEST].filter(existsSync);
  const sorted = [...pairs].sort((a, b) => b[0].length - a[0].length);
  for (const file of files) {
    const source = readFileSync(file, "utf8");
    let next = source;
    for (const [from, to] of sorted) next = next.split(from).join(to);
    for (const [from, to] of MOVES.filter(([f]) => f.endsWith("/"))) next = next.split(from).join(to);
    if (file === ARCH_TEST) next = next.replace(/(const EXPECTED_BEFORE_MOVE: readonly string\[\] = \[)[^\]]*(\];)/, "$1$2");
    if (next !== source) {
      log(`paths updated in ${file}`);
      writeFileSync(file, next);
      changed++;
    }
  }
  return changed;
}

if (!existsSync("package.json") || !existsSync("src")) {
  console.error("run this from the repository root");
  process.exit(2);
}
const pairs = fileMoves();
const movedNow = moveFiles(pairs);
if (dryRun) {
  console.log(`(dry run: ${movedNow.size} file(s) would move; imports and paths are rewritten after the moves)`);
  process.exit(0);
}
const moved = movedNow.size;
const rewritten = rewriteImports(pairs, movedNow);
const texts = rewriteText(pairs);
console.log(
  `move-layers: ${moved} file(s) moved, imports rewritten in ${rewritten} file(s), paths updated in ${texts} text file(s)${moved + rewritten + texts === 0 ? " (nothing to do: already done)" : ""}`,
);
if (!dryRun && moved + rewritten + texts > 0) console.log("next: npm run typecheck && npm test, then commit (git add -A)");
