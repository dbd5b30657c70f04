// A command's --help, generated from the same option table that parses its arguments: the Usage
// lines and the option list come from here, only the paragraphs and examples are written by hand
// (next to the table, in the command's file). Converting a command: give each entry of its table a
// `help` (and `value` for string options), then build `help` with commandHelp.

/** One option as parse() takes it (node:util parseArgs), plus what --help says about it. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  /** What the option does, for --help: wrapped to the help's width; "\n" starts a new line. */
  readonly help?: string;
  /** The value's name in --help (string options): FILE, NAME, N. Default VALUE. */
  readonly value?: string;
  /** A remark printed after the description in brackets, e.g. "non-interactive default". */
  readonly note?: string;
  /** Heading of the group this option belongs to ("Options:" when none); a group starts where its first option is. */
  readonly group?: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** An option table whose every entry is described: what commandHelp accepts. */
export type DescribedTable = Readonly<Record<string, OptionSpec & { readonly help: string }>>;

/** -h/--help, the same in every command; put it last in a table. */
export const HELP_OPTION = { help: { type: "boolean", short: "h", help: "show this help" } } as const satisfies DescribedTable;

export interface HelpText {
  /** What follows "otpgate COMMAND" on each Usage line, e.g. "[-s FILE | --user NAME] [--json]". */
  readonly usage: readonly string[];
  /** The paragraphs between the Usage lines and the options. */
  readonly about: string;
  /** After the options: exit status, examples. */
  readonly after?: string;
}

/** Width the descriptions are wrapped to (the hand-written paragraphs keep to it too). */
export const HELP_WIDTH = 90;
/** Where descriptions start; a longer option column pushes only its own description right. */
const MAX_COLUMN = 28;

/** "-s, --secret PATH" / "    --json": the left column of one option. */
export function optionSignature(name: string, spec: OptionSpec): string {
  const value = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
  return `${spec.short ? `-${spec.short}, ` : "    "}--${name}${value}`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(/ +/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}

/**
 * The option list, grouped under their headings, in the table's order within each group.
 * `signature` writes the left column (otpgate pam's module arguments are NAME=VALUE, not --NAME).
 */
export function optionLines(options: DescribedTable, signature: (name: string, spec: OptionSpec) => string = optionSignature): string[] {
  const entries = Object.entries(options);
  const column = Math.min(MAX_COLUMN, Math.max(...entries.map(([name, spec]) => 2 + signature(name, spec).length + 2)));
  const groups = new Map<string, string[]>();
  for (const [name, spec] of entries) {
    const heading = spec.group ?? "Options:";
    const lines = groups.get(heading) ?? [];
    groups.set(heading, lines);
    const left = `  ${signature(name, spec)}`;
    const start = Math.max(column, left.length + 2);
    const text = spec.note ? `${spec.help} [${spec.note}]` : spec.help;
    const [first = "", ...rest] = wrap(text, HELP_WIDTH - column);
    lines.push(`${left.padEnd(start)}${first}`);
    for (const line of rest) lines.push(`${"".padEnd(column)}${line}`);
  }
  return [...groups].flatMap(([heading, lines], i) => [...(i > 0 && heading === "Options:" ? [""] : []), heading, ...lines]);
}

/** The whole --help of `otpgate COMMAND`. */
export function commandHelp(command: string, text: HelpText, options: DescribedTable): string {
  const usage = text.usage.map((args, i) => `${i === 0 ? "Usage: " : "       "}otpgate ${command}${args ? ` ${args}` : ""}`);
  const parts = [usage.join("\n"), text.about.trim(), optionLines(options).join("\n")];
  if (text.after) parts.push(text.after.trim());
  return parts.join("\n\n");
}
