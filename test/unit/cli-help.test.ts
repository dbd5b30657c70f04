// Every command's --help and its parser agree: each option the parser accepts is in --help, and
// every option --help names (in the Usage lines, the option list and the prose) is one the parser
// accepts, or one of the otpgate command the sentence names ("otpgate rstudio-helper ... --noskewadj").
// Converted commands export the option table their help is generated from (help.ts); for the
// others, what the parser accepts is read from the source (the object literal given to parse()).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { optionLines, type DescribedTable, type OptionTable } from "../../src/adapters/cli/help.js";
import type { Output } from "../../src/adapters/cli/output.js";
import { moduleArguments, pamArgumentSignature } from "../../src/adapters/cli/commands/pam.js";
import { PAM_ARGUMENTS, parsePamOptions } from "../../src/adapters/pam/options.js";
import { ROOT } from "../helpers/system.js";

/**
 * Commands whose --help is still hand-written (not generated from their option table). Converting
 * one: give its parse() table `help`/`value` fields, export it as `options` (`keysOptions` for
 * runKeys, ...), build `help` with commandHelp, remove it here. Must end empty.
 */
const PENDING_CONVERSION: readonly string[] = [];

/** Another program's flags quoted in a help text: not otpgate options. */
const FOREIGN = ["sshd -t", "sshd -T", "pam_exec.so quiet expose_authtok", "usermod --expiredate"];

const COMMANDS_DIR = "src/adapters/cli/commands";

interface Entry {
  /** As typed: "codes", "gateway keys". */
  readonly name: string;
  readonly file: string;
  readonly run: (argv: string[], io: Output) => Promise<number>;
  readonly help: string;
  /** The exported option table (converted commands). */
  readonly table: OptionTable | undefined;
}

/** run → help/options; runKeys → keysHelp/keysOptions (subcommands in their own module). */
function exportNames(runName: string): { help: string; options: string } {
  const stem = runName.slice(3);
  return stem ? { help: `${stem[0]!.toLowerCase()}${stem.slice(1)}Help`, options: `${stem[0]!.toLowerCase()}${stem.slice(1)}Options` } : { help: "help", options: "options" };
}

/** The command a run function implements: the module's name; a runX in NAME-admin.ts is "NAME x". */
function commandName(file: string, runName: string): string {
  const base = file.replace(/\.ts$/, "");
  return runName === "run" ? base : `${base.replace(/-admin$/, "")} ${runName.slice(3).toLowerCase()}`;
}

/** Modules whose run another command module loads and delegates to (otpgate radius -> server-main.ts): reached through it. */
function delegatedModules(files: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const file of files) {
    const text = readFileSync(join(ROOT, COMMANDS_DIR, file), "utf8");
    for (const m of text.matchAll(/\{\s*run\s*(?::\s*\w+\s*)?\}\s*=\s*await import\("\.\/([\w-]+)\.js"\)/g)) out.add(`${m[1]}.ts`);
  }
  return out;
}

async function printedHelp(run: Entry["run"]): Promise<string> {
  const out: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: () => {}, prompt: () => {} };
  assert.equal(await run(["--help"], io), 0, "--help exits 0");
  return out.join("\n");
}

async function loadEntries(): Promise<Entry[]> {
  const entries: Entry[] = [];
  const files = readdirSync(join(ROOT, COMMANDS_DIR))
    .filter((f) => f.endsWith(".ts"))
    .sort();
  const delegated = delegatedModules(files);
  for (const file of files) {
    const mod = (await import(`../../${COMMANDS_DIR}/${file.replace(/\.ts$/, ".js")}`)) as Record<string, unknown>;
    for (const [key, value] of Object.entries(mod)) {
      if (!/^run([A-Z]\w*)?$/.test(key) || typeof value !== "function") continue;
      if (key === "run" && delegated.has(file)) continue;
      const names = exportNames(key);
      const run = value as Entry["run"];
      const help = await printedHelp(run);
      if (typeof mod[names.help] === "string") assert.equal(help, (mod[names.help] as string).trimEnd(), `${file}: --help prints the exported ${names.help}`);
      let table = mod[names.options] as OptionTable | undefined;
      const loads = key === "run" ? /\{\s*run\s*(?::\s*\w+\s*)?\}\s*=\s*await import\("\.\/([\w-]+)\.js"\)/.exec(readFileSync(join(ROOT, COMMANDS_DIR, file), "utf8")) : null;
      if (!table && loads) table = ((await import(`../../${COMMANDS_DIR}/${loads[1]}.js`)) as Record<string, unknown>).options as OptionTable | undefined;
      entries.push({ name: commandName(file, key), file, run, help, table });
    }
  }
  return entries;
}

interface Accepted {
  readonly long: Set<string>;
  readonly short: Set<string>;
}

function accepted(table: OptionTable): Accepted {
  return { long: new Set(Object.keys(table)), short: new Set(Object.values(table).flatMap((o) => (o.short ? [o.short] : []))) };
}

/** Property names and shorts of an object literal, spreads of imported/local constants followed. */
function literalOptions(node: ts.ObjectLiteralExpression, source: ts.SourceFile, file: string, into: Accepted): void {
  for (const p of node.properties) {
    if (ts.isSpreadAssignment(p) && ts.isIdentifier(p.expression)) {
      const resolved = resolveConstant(p.expression.text, source, file);
      if (resolved) literalOptions(resolved.node, resolved.source, resolved.file, into);
      continue;
    }
    if (!ts.isPropertyAssignment(p)) continue;
    const name = ts.isIdentifier(p.name) || ts.isStringLiteral(p.name) ? p.name.text : undefined;
    if (!name) continue;
    into.long.add(name);
    if (ts.isObjectLiteralExpression(p.initializer)) {
      for (const q of p.initializer.properties) {
        if (ts.isPropertyAssignment(q) && ts.isIdentifier(q.name) && q.name.text === "short" && ts.isStringLiteral(q.initializer)) into.short.add(q.initializer.text);
      }
    }
  }
}

function parseSource(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(join(ROOT, file), "utf8"), ts.ScriptTarget.ES2022, true);
}

function resolveConstant(name: string, source: ts.SourceFile, file: string): { node: ts.ObjectLiteralExpression; source: ts.SourceFile; file: string } | null {
  let found: { node: ts.ObjectLiteralExpression; source: ts.SourceFile; file: string } | null = null;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer) {
      let init: ts.Expression = n.initializer;
      while (ts.isAsExpression(init) || ts.isSatisfiesExpression(init)) init = init.expression;
      if (ts.isObjectLiteralExpression(init)) found = { node: init, source, file };
    }
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && n.importClause?.namedBindings && ts.isNamedImports(n.importClause.namedBindings)) {
      if (n.importClause.namedBindings.elements.some((e) => e.name.text === name)) {
        const target = join(file, "..", n.moduleSpecifier.text.replace(/\.js$/, ".ts"));
        found = resolveConstant(name, parseSource(target), target);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(source);
  return found;
}

/** What a not-yet-converted command's parse("NAME", argv, {...}) calls accept. */
function acceptedFromSource(entry: Entry, moduleFile = entry.file): Accepted | null {
  const file = join(COMMANDS_DIR, moduleFile);
  const source = parseSource(file);
  const into: Accepted = { long: new Set(), short: new Set() };
  let found = false;
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === "parse" && n.arguments.length === 3) {
      const [name, , table] = n.arguments;
      // parse("NAME", ...) for this command, or parse(variable, ...) in a module several names share.
      if (name && (ts.isStringLiteral(name) ? name.text === entry.name : moduleFile !== entry.file) && table) {
        found = true;
        if (ts.isObjectLiteralExpression(table)) literalOptions(table, source, file, into);
        else if (ts.isIdentifier(table)) {
          const resolved = resolveConstant(table.text, source, file);
          if (resolved) literalOptions(resolved.node, resolved.source, resolved.file, into);
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(source);
  if (found) return into;
  // A loader (otpgate radius): the module it delegates run to parses the arguments.
  const loaded = /\{\s*run\s*(?::\s*\w+\s*)?\}\s*=\s*await import\("\.\/([\w-]+)\.js"\)/.exec(source.text);
  return loaded && moduleFile === entry.file ? acceptedFromSource(entry, `${loaded[1]}.ts`) : null;
}

interface Mention {
  readonly flag: string;
  /** The otpgate command the sentence names before it on the same line, if another one. */
  readonly command: string | null;
}

/**
 * Every --long and -x flag in a help text, with the command it belongs to: a flag after "otpgate X"
 * in the same clause (up to a blank line, the next option line, or a ".", ";" or ")" followed by a
 * space) is X's; wrapped lines continue the clause.
 */
function mentions(help: string, self: string, known: ReadonlySet<string>): Mention[] {
  let text = help;
  // A quoted command may be wrapped: "usermod\n      --expiredate" is still usermod's flag.
  for (const foreign of FOREIGN)
    text = text.replace(
      new RegExp(
        foreign
          .split(" ")
          .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
          .join("\\s+"),
        "g",
      ),
      " ",
    );
  const out: Mention[] = [];
  for (const clause of text.split(/\n(?=\s*-)|\n\s*\n|[.;)](?=\s)/)) {
    const line = clause.replace(/\s+/g, " ");
    const named = [...line.matchAll(/\botpgate ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)].map((m) => ({ at: m.index, name: m[2] && known.has(`${m[1]} ${m[2]}`) ? `${m[1]} ${m[2]}` : m[1]! }));
    for (const m of line.matchAll(/(?<![\w$.-])(--[a-z][a-z0-9-]*|-[A-Za-z])(?![\w-])/g)) {
      const before = named.filter((n) => n.at < m.index).pop();
      out.push({ flag: m[1]!, command: before && before.name !== self ? before.name : null });
    }
  }
  return out;
}

function isAccepted(flag: string, a: Accepted): boolean {
  return flag.startsWith("--") ? a.long.has(flag.slice(2)) : a.short.has(flag.slice(1));
}

function mentioned(help: string, flag: string): boolean {
  return new RegExp(`(?<![\\w-])${flag}(?![\\w-])`).test(help);
}

const entries = await loadEntries();
const byName = new Map(entries.map((e) => [e.name, e]));
const acceptedBy = new Map<string, Accepted | null>(entries.map((e) => [e.name, e.table ? accepted(e.table) : acceptedFromSource(e)]));

test("every command module's entry points are found, pam, setup and the gateway's subcommands included", () => {
  for (const name of ["codes", "doctor", "enroll", "gateway", "gateway keys", "gateway sessions", "invite", "pam", "passwd", "qr", "radius", "rstudio-helper", "setup", "status", "verify"]) {
    assert.ok(byName.has(name), `no entry point for otpgate ${name}`);
  }
});

for (const entry of entries) {
  const pending = PENDING_CONVERSION.includes(entry.name);
  test(`otpgate ${entry.name} --help names exactly the options its parser accepts`, { todo: pending ? "PENDING_CONVERSION: --help not generated from the option table yet" : false }, async () => {
    if (entry.name === "pam") {
      // Module arguments, not flags: --help lists the table parsePamOptions accepts (PAM_ARGUMENTS).
      const sample: Record<string, string> = { OCTAL: "0600", SECS: "30" };
      const args = [...entry.help.matchAll(/^ {2}([a-z_]+)(?:=(\S*))?(?= {2,})/gm)].map((m) => `${m[1]}${m[2] ? `=${sample[m[2]] ?? "x"}` : ""}`);
      assert.deepEqual(
        args.map((a) => a.replace(/=.*/, "")),
        Object.keys(PAM_ARGUMENTS),
        "pam --help lists exactly the module arguments of PAM_ARGUMENTS, in its order",
      );
      for (const arg of args) assert.ok(parsePamOptions(["secret=/var/lib/otpgate/${USER}", arg]).ok, `pam --help lists ${arg}, which the parser refuses`);
      for (const [name, spec] of Object.entries(PAM_ARGUMENTS)) {
        // The other form of each argument (a value where it takes none, none where it needs one) is refused.
        const wrongForm = spec.type === "string" ? name : `${name}=1`;
        assert.equal(parsePamOptions([wrongForm]).ok, false, `the parser accepts ${wrongForm}, which --help does not list`);
      }
      for (const line of optionLines(moduleArguments as DescribedTable, pamArgumentSignature))
        assert.ok(entry.help.includes(line), `pam --help does not contain the generated line ${JSON.stringify(line)}`);
      for (const flag of ["-h", "--help"]) assert.ok(mentioned(entry.help, flag), `otpgate pam accepts ${flag} but its --help does not say so`);
      return;
    }

    const own = acceptedBy.get(entry.name);
    assert.ok(own, `no option table found for otpgate ${entry.name} (neither an exported table nor a parse("${entry.name}", argv, {...}) call)`);
    for (const long of own.long) assert.ok(mentioned(entry.help, `--${long}`), `--${long} is accepted but not in otpgate ${entry.name} --help`);
    for (const short of own.short) assert.ok(mentioned(entry.help, `-${short}`), `-${short} is accepted but not in otpgate ${entry.name} --help`);

    for (const m of mentions(entry.help, entry.name, new Set(byName.keys()))) {
      const owner = m.command ?? entry.name;
      const theirs = acceptedBy.get(owner);
      if (m.command && !byName.has(m.command)) assert.fail(`otpgate ${entry.name} --help names "otpgate ${m.command}", no such command`);
      if (!theirs) continue;
      assert.ok(isAccepted(m.flag, theirs), `otpgate ${entry.name} --help names ${m.flag}${m.command ? ` of otpgate ${m.command}` : ""}, which ${m.command ? "that" : "its"} parser does not accept`);
    }

    assert.ok(entry.table, `otpgate ${entry.name} exports no option table: its --help is written by hand`);
    const table = entry.table as DescribedTable;
    for (const line of optionLines(table)) assert.ok(entry.help.includes(line), `--help does not contain the generated option line ${JSON.stringify(line)}`);
  });
}

test("PENDING_CONVERSION lists no command that is converted already", () => {
  for (const name of PENDING_CONVERSION) {
    const entry = byName.get(name);
    if (!entry) continue; // listed ahead of a branch that brings it (otpgate server)
    assert.equal(entry.table, undefined, `otpgate ${name} is converted (it exports its option table): remove it from PENDING_CONVERSION`);
  }
});
