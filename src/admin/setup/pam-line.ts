// PAM service file lines as Linux-PAM reads them, and the command lines otpgate puts into them.
// Linux-PAM (libpam/pam_handlers.c, pam_misc.c _pam_StrTok): a line ends at the first '#' (comment),
// a trailing '\' joins the next line, words are split at space, tab and newline, and a word that
// begins with '[' runs to the first ']' that is not written '\]' (the brackets are dropped, '\]'
// becomes ']'). Every line setup writes is tokenized back this way and must give exactly the
// intended words, so a value PAM would split or cut is quoted or refused, never mangled.

import { SetupError } from "./apply.js";

/** Words of one PAM line as libpam splits them (comment cut, brackets), or [] for a blank/comment line. */
export function tokenizePamLine(line: string): string[] {
  const hash = line.indexOf("#");
  let rest = hash >= 0 ? line.slice(0, hash) : line;
  const words: string[] = [];
  const sep = (c: string | undefined) => c === " " || c === "\t" || c === "\n";
  let i = 0;
  for (;;) {
    while (i < rest.length && sep(rest[i])) i++;
    if (i >= rest.length) break;
    let word = "";
    if (rest[i] === "[") {
      i++;
      while (i < rest.length && rest[i] !== "]") {
        if (rest[i] === "\\" && rest[i + 1] === "]") i++;
        word += rest[i++];
      }
      i++; // the ']' (or the end), then the next word starts right after it
    } else {
      while (i < rest.length && !sep(rest[i])) word += rest[i++];
    }
    words.push(word);
  }
  rest = "";
  return words;
}

/** Characters no PAM word can carry: '#' starts a comment, NUL and line breaks end the line, '\' is ambiguous next to ']'. */
const UNWRITABLE = /[#\\\x00-\x08\x0a-\x1f\x7f]/;

/** One word for a PAM line: bracketed when it holds blanks or starts with '['; throws when PAM cannot carry it. */
export function pamWord(word: string, what = "a value"): string {
  if (word === "" || UNWRITABLE.test(word)) {
    throw new SetupError(
      `${what} "${word.replace(/[\x00-\x1f\x7f]/g, "?")}" cannot be written into a PAM line: PAM cuts a line at '#', treats '\\' next to ']' specially and does not allow control characters or an empty word; choose a value without them`,
    );
  }
  return /[ \t]/.test(word) || word.startsWith("[") ? `[${word.replace(/\]/g, "\\]")}]` : word;
}

/**
 * A PAM rule line from its words (type, control, module, arguments), padded like setup's other
 * lines. It is parsed back like libpam does; anything but the same words is a SetupError.
 */
export function pamLine(words: readonly string[], label: (word: string) => string = () => "a value"): string {
  const [type, control, module, ...args] = words;
  if (!type || !control || !module) throw new SetupError("internal: a PAM line needs a type, a control and a module");
  const quoted = [type.padEnd(8), control.includes(" ") ? `[${control}]` : control.padEnd(9), module, ...args.map((a) => pamWord(a, label(a)))];
  const line = quoted.join(" ");
  const bytes = Buffer.byteLength(line, "utf8");
  if (bytes > MAX_PAM_LINE) {
    throw new SetupError(
      `the PAM line would be ${bytes} bytes; Linux-PAM 1.5 rejects the whole service file when a line is longer than 1023, so nothing was written: use shorter paths (--node, --otpgate, --secret)`,
    );
  }
  const back = tokenizePamLine(line);
  if (back.length !== words.length || back.some((w, i) => w !== words[i])) {
    throw new SetupError(`the PAM line would not reach the module as intended (${JSON.stringify(back)} instead of ${JSON.stringify(words)}); nothing was written`);
  }
  return line;
}

/**
 * Environment variables that would let whoever sets the PAM environment (pam_env, an earlier
 * module) make the root node process run or load code, or write files: Node's (node --help and
 * the Node 20 docs: NODE_OPTIONS, module paths, CA file, warnings/coverage/compile-cache output
 * files, ICU data, an IPC channel fd, debug output), libuv's thread pool, OpenSSL's configuration,
 * provider and engine directories (each can load a shared object), and glibc's for node and the
 * programs it starts (preload, library path, audit, tunables, gconv modules, temp directory).
 * Left out, because they only change output that pam_exec discards or features otpgate pam does
 * not use: NODE_DISABLE_COLORS, NODE_NO_WARNINGS, NODE_PENDING_*, NODE_REPL_*, NODE_SKIP_PLATFORM_CHECK,
 * NODE_TLS_REJECT_UNAUTHORIZED, SSL_CERT_*. The list is short on purpose: Linux-PAM 1.5 reads a
 * line into a 1024-byte buffer and rejects the whole service file when one is longer.
 * The dynamic loader's variables (LD_*) cannot be removed for the first program pam_exec starts
 * (/usr/bin/env itself): glibc honours them there unless the process is setuid. They are removed
 * for node and everything after it.
 */
export const UNSAFE_ENV: readonly string[] = [
  "NODE_OPTIONS",
  "NODE_PATH",
  "NODE_PRESERVE_SYMLINKS",
  "NODE_EXTRA_CA_CERTS",
  "NODE_REDIRECT_WARNINGS",
  "NODE_V8_COVERAGE",
  "NODE_COMPILE_CACHE",
  "NODE_ICU_DATA",
  "NODE_CHANNEL_FD",
  "NODE_DEBUG",
  "NODE_DEBUG_NATIVE",
  "UV_THREADPOOL_SIZE",
  "OPENSSL_CONF",
  "OPENSSL_MODULES",
  "OPENSSL_ENGINES",
  "LD_PRELOAD",
  "LD_LIBRARY_PATH",
  "LD_AUDIT",
  "GLIBC_TUNABLES",
  "GCONV_PATH",
  "TMPDIR",
];

/** Linux-PAM 1.5.2 (Debian 12) reads a config line into char[1024]; a longer one fails the whole file. */
export const MAX_PAM_LINE = 1000;

export const ENV_BINARY = "/usr/bin/env";
export const SAFE_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/** argv that runs `node otpgate ARGS` with the variables above removed and a fixed PATH. */
export function cleanNodeCommand(node: string, otpgate: string, args: readonly string[]): string[] {
  // env takes NAME=VALUE words until the first one without '=': such a node path would be an assignment.
  if (node.includes("=")) throw new SetupError(`${node} contains "=", which /usr/bin/env would read as a variable assignment; install node elsewhere or pass --node`);
  return [ENV_BINARY, ...UNSAFE_ENV.flatMap((v) => ["-u", v]), SAFE_PATH, node, otpgate, ...args];
}

/** The program pam_exec runs for a line's module arguments (pam_exec stops at the first word starting with '/'). */
export function pamExecArgv(moduleArgs: readonly string[]): string[] {
  const at = moduleArgs.findIndex((w) => w.startsWith("/"));
  return at < 0 ? [] : moduleArgs.slice(at);
}

/** node, otpgate and their arguments in an argv written by cleanNodeCommand (or a plain `node otpgate ...`). */
export function otpgateCommandOf(argv: readonly string[]): { node: string; otpgate: string; args: string[] } | null {
  let i = 0;
  if (argv[0] === ENV_BINARY) {
    i = 1;
    while (i < argv.length && (argv[i] === "-u" || argv[i]!.includes("="))) i += argv[i] === "-u" ? 2 : 1;
  }
  const node = argv[i];
  const otpgate = argv[i + 1];
  return node && otpgate ? { node, otpgate, args: argv.slice(i + 2) } : null;
}
