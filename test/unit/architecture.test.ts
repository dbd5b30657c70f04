// The layer rules, checked on every import of every file under src/ (this header is the rule book;
// imports point one way: adapters -> admin -> services -> core/formats/ports; stores and platform
// implement ports):
//
//   core, formats   pure: no node:, process, console, clock, randomness, require; import each other and
//                   ports (types)
//   ports           interfaces: core, formats, ports; no node:
//   services        the logic that composes ports and core: core, formats, ports, services; no node:,
//                   process, Date.now, Math.random (I/O arrives through ports)
//   stores          implement ports (files, memory): core, formats, ports, platform, stores
//   platform        Node implementations: core, formats, ports, platform
//   admin           system administration (sshd, PAM stacks, setup, doctor): may use Node and platform,
//                   read stores, call services; never an adapter
//   adapters/X      cli, http, pam, radius, server: any layer above, and X itself, never adapters/Y
//   composition roots (src/bin/*, src/adapters/cli/commands/*, src/adapters/http/gateway-entry.ts):
//                   wire everything, so they may import any layer and start other adapters; they are
//                   the only places outside stores/ that build a store (a store class or the store
//                   factory in stores/file-accounts.ts)
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { test } from "node:test";
import { ROOT } from "../helpers/system.js";

const LAYER_IMPORTS: Readonly<Record<string, readonly string[]>> = {
  core: ["core", "formats", "ports"],
  formats: ["core", "formats", "ports"],
  ports: ["core", "formats", "ports"],
  services: ["core", "formats", "ports", "services"],
  stores: ["core", "formats", "ports", "platform", "stores"],
  platform: ["core", "formats", "ports", "platform"],
  admin: ["core", "formats", "ports", "services", "stores", "platform", "admin"],
  adapters: ["core", "formats", "ports", "services", "stores", "platform", "admin"],
};

/** Source patterns a layer may not contain at all. */
const PURE = [/from "node:/, /import\("node:/, /\bprocess\./, /\bconsole\./, /Date\.now/, /Math\.random/, /\brequire\(/];
const FORBIDDEN_TEXT: Readonly<Record<string, readonly RegExp[]>> = {
  core: PURE,
  formats: PURE,
  ports: [/from "node:/, /import\("node:/],
  services: [/from "node:/, /import\("node:/, /\bprocess\./, /Date\.now/, /Math\.random/],
};

const ROOTS = [/^src\/bin\//, /^src\/adapters\/cli\/commands\//, /^src\/adapters\/http\/gateway-entry\.ts$/];

/** The store factories (stores/file-accounts.ts, stores/pg/open.ts and connect.ts): calling one builds a store. */
const STORE_FACTORIES = ["accountStore", "fileAccounts", "fileAccountsCached", "openFleetStore", "connectFleetStore"];

/**
 * Files that break the layer rules today and that scripts/move-layers.mjs moves to where they
 * belong (system administration to src/admin/, account lookup and gateway revocation to stores/,
 * the CLI's account opening to its commands). The script empties this list.
 */
const EXPECTED_BEFORE_MOVE: readonly string[] = [];

/**
 * Files outside the composition roots that build a store, which a move cannot fix: the root has to
 * pass them a store or an opener instead (a code change each). Must end empty.
 */
const BUILDS_STORES_OUTSIDE_ROOTS: readonly string[] = [];

function sources(dir: string): string[] {
  if (!existsSync(join(ROOT, dir))) return [];
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

/** "core", "services", "adapters/http", ... for a path under src/. */
function layerOf(file: string): string {
  const parts = file.split("/");
  return parts[1] === "adapters" ? `adapters/${parts[2]}` : parts[1]!;
}

interface Import {
  readonly spec: string;
  /** Resolved path under src/ (relative imports only). */
  readonly target: string;
  readonly names: readonly string[];
}

function importsOf(file: string, source: string): Import[] {
  const out: Import[] = [];
  for (const m of source.matchAll(/(?:import|export)\s+(type\s+)?([^;]*?)\s*from\s*"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/g)) {
    const spec = (m[3] ?? m[4])!;
    const names = m[1] ? [] : [...(m[2] ?? "").matchAll(/(?:^|[{,\s])(?!type\s)([A-Za-z_$][\w$]*)(?:\s+as\s+([A-Za-z_$][\w$]*))?/g)].map((n) => n[2] ?? n[1]!);
    out.push({ spec, target: normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts"), names });
  }
  return out;
}

const isRoot = (file: string) => ROOTS.some((r) => r.test(file));

function layerProblems(file: string, source: string): string[] {
  const layer = layerOf(file);
  const problems: string[] = [];
  for (const pattern of FORBIDDEN_TEXT[layer] ?? []) if (pattern.test(source)) problems.push(`${file}: ${layer} may not contain ${pattern.source}`);
  if (layer === "bin" || isRoot(file)) return problems;
  const allowed = layer.startsWith("adapters/") ? [...LAYER_IMPORTS.adapters!, layer] : LAYER_IMPORTS[layer];
  if (!allowed) return [...problems, `${file}: src/${layer} is not a known layer (add it to LAYER_IMPORTS with its rule)`];
  for (const imp of importsOf(file, source)) {
    if (!imp.target.startsWith("src/")) continue;
    const target = layerOf(imp.target);
    if (!allowed.includes(target)) problems.push(`${file}: ${layer} imports ${target} (${imp.spec})`);
  }
  return problems;
}

/** Store classes: every class in src/stores that implements a port. */
function storeClasses(): string[] {
  return sources("src/stores").flatMap((f) => [...readFileSync(join(ROOT, f), "utf8").matchAll(/export class (\w+)[^{]*\bimplements\b/g)].map((m) => m[1]!));
}

function buildsStore(file: string, source: string, classes: readonly string[]): string[] {
  const found: string[] = [];
  for (const imp of importsOf(file, source)) {
    if (!imp.target.startsWith("src/stores/")) continue;
    for (const name of imp.names) {
      if (classes.includes(name) && new RegExp(`\\bnew ${name}\\(`).test(source)) found.push(`new ${name}`);
      if (STORE_FACTORIES.includes(name) && new RegExp(`(?<![\\w.])${name}\\(`).test(source)) found.push(`${name}()`);
    }
  }
  return found;
}

const files = sources("src");

test("every file keeps its layer's rules (imports and pure code), apart from the files the move plan moves", () => {
  const problems = files.filter((f) => !EXPECTED_BEFORE_MOVE.includes(f)).flatMap((f) => layerProblems(f, readFileSync(join(ROOT, f), "utf8")));
  assert.deepEqual(problems, []);
});

test("EXPECTED_BEFORE_MOVE lists only files that still break a rule where they are (run scripts/move-layers.mjs, which empties it)", () => {
  for (const f of EXPECTED_BEFORE_MOVE) {
    assert.ok(existsSync(join(ROOT, f)), `${f} no longer exists: remove it from EXPECTED_BEFORE_MOVE`);
    const problems = layerProblems(f, readFileSync(join(ROOT, f), "utf8"));
    const storeBuilder = !isRoot(f) && !f.startsWith("src/stores/") && buildsStore(f, readFileSync(join(ROOT, f), "utf8"), storeClasses()).length > 0;
    assert.ok(problems.length > 0 || storeBuilder, `${f} keeps every rule now: remove it from EXPECTED_BEFORE_MOVE`);
  }
});

test("only composition roots (and stores/ itself) build stores", () => {
  const classes = storeClasses();
  assert.ok(classes.includes("FileAccountStore") && classes.includes("MemoryAccountStore"), `store classes found: ${classes.join(", ")}`);
  const builders = files.filter((f) => !isRoot(f) && !f.startsWith("src/stores/") && !EXPECTED_BEFORE_MOVE.includes(f) && !BUILDS_STORES_OUTSIDE_ROOTS.includes(f));
  const problems = builders.flatMap((f) => buildsStore(f, readFileSync(join(ROOT, f), "utf8"), classes).map((what) => `${f}: ${what} outside a composition root`));
  assert.deepEqual(problems, []);
  for (const f of BUILDS_STORES_OUTSIDE_ROOTS) {
    if (!existsSync(join(ROOT, f))) assert.fail(`${f} no longer exists: remove it from BUILDS_STORES_OUTSIDE_ROOTS`);
    assert.ok(buildsStore(f, readFileSync(join(ROOT, f), "utf8"), classes).length > 0, `${f} no longer builds a store: remove it from BUILDS_STORES_OUTSIDE_ROOTS`);
  }
});

test("the rules catch what they describe (a service importing platform, an adapter importing another, a store built in a service)", () => {
  assert.deepEqual(layerProblems("src/services/x.ts", 'import { lookupUserByName } from "../platform/users.js";'), ["src/services/x.ts: services imports platform (../platform/users.js)"]);
  assert.deepEqual(layerProblems("src/services/x.ts", 'import { readFileSync } from "node:fs";').length, 1);
  assert.deepEqual(layerProblems("src/adapters/http/x.ts", 'const m = await import("../radius/server.js");'), ["src/adapters/http/x.ts: adapters/http imports adapters/radius (../radius/server.js)"]);
  assert.deepEqual(layerProblems("src/adapters/cli/commands/x.ts", 'import { startServer } from "../../radius/server.js";'), []);
  assert.deepEqual(layerProblems("src/core/x.ts", "const t = Date.now();").length, 1);
  assert.deepEqual(layerProblems("src/newlayer/x.ts", "").length, 1);
  assert.deepEqual(buildsStore("src/services/x.ts", 'import { FileAccountStore } from "../stores/file-store.js";\nconst s = new FileAccountStore({});', ["FileAccountStore"]), [
    "new FileAccountStore",
  ]);
  assert.deepEqual(buildsStore("src/services/x.ts", 'import { accountStore, type X } from "../stores/file-accounts.js";\nconst s = accountStore(u, p);', []), ["accountStore()"]);
  assert.deepEqual(buildsStore("src/services/x.ts", 'import type { FileAccountStore } from "../stores/file-store.js";\nlet s: FileAccountStore;', ["FileAccountStore"]), []);
  assert.deepEqual(buildsStore("src/services/x.ts", 'import { openFleetStore } from "../stores/pg/open.js";\nconst s = await openFleetStore(o);', []), ["openFleetStore()"]);
});
