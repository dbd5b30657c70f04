// The argv systemd passes for an ExecStart= line, following systemd.service(5) "Command lines" and
// systemd.unit(5) "Specifiers", independently of otpgate's writer: specifiers first (%% is a literal
// %, any other % specifier is resolved from `specifiers`, unknown ones are an error), then words
// split on whitespace with "..." / '...' quoting and C escapes, then at exec time $$ -> $, ${NAME}
// replaced inside a word, and a word that is exactly $NAME split on whitespace.

const C_ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'", s: " " };

export function parseExecStart(line: string, env: Record<string, string> = {}, specifiers: Record<string, string> = {}): string[] {
  let resolved = "";
  for (let i = 0; i < line.length; i++) {
    if (line[i] !== "%") {
      resolved += line[i];
      continue;
    }
    const s = line[++i];
    if (s === "%") resolved += "%";
    else if (s !== undefined && s in specifiers) resolved += specifiers[s];
    else throw new Error(`unknown specifier %${s ?? ""}`);
  }
  // Words, each remembering whether it was written as a bare $NAME (split at exec time).
  const words: { text: string; bareVar: boolean }[] = [];
  let i = 0;
  while (i < resolved.length) {
    while (i < resolved.length && /\s/.test(resolved[i]!)) i++;
    if (i >= resolved.length) break;
    let word = "";
    let quoted = false;
    const start = i;
    while (i < resolved.length && !/\s/.test(resolved[i]!)) {
      const c = resolved[i]!;
      if (c === '"' || c === "'") {
        quoted = true;
        i++;
        while (i < resolved.length && resolved[i] !== c) {
          if (resolved[i] === "\\") {
            const e = resolved[i + 1]!;
            if (!(e in C_ESCAPES)) throw new Error(`unknown escape \\${e}`);
            word += C_ESCAPES[e];
            i += 2;
          } else word += resolved[i++];
        }
        if (i >= resolved.length) throw new Error("unterminated quote");
        i++;
      } else if (c === "\\") {
        const e = resolved[i + 1]!;
        if (!(e in C_ESCAPES)) throw new Error(`unknown escape \\${e}`);
        word += C_ESCAPES[e];
        i += 2;
      } else word += resolved[i++];
    }
    words.push({ text: word, bareVar: !quoted && /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(resolved.slice(start, i)) });
  }
  const argv: string[] = [];
  for (const w of words) {
    if (w.bareVar) {
      argv.push(...(env[w.text.slice(1)] ?? "").split(/\s+/).filter(Boolean));
      continue;
    }
    argv.push(w.text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string | undefined) => (m === "$$" ? "$" : (env[name!] ?? ""))));
  }
  return argv;
}
