// google-authenticator's command-line flags, with the same meanings and checks (and the same
// messages where it has them), plus otpgate's own (--user, --algorithm, --digits, --qr-png/--qr-svg).

import { parseArgs } from "node:util";
import { UsageError } from "../../../core/errors.js";
import { ALGORITHMS, type Algorithm } from "../../../core/otp.js";
import type { QrMode } from "../../../core/qr-render.js";
import { MAX_SCRATCH_CODES } from "../../../core/enroll.js";
import { HELP_OPTION, type DescribedTable } from "../help.js";
import { parseQrMode } from "../qr-output.js";
import { STORE_OPTIONS, type StoreValues } from "../store-options.js";

export interface EnrollFlags {
  readonly help: boolean;
  readonly mode?: "totp" | "hotp" | undefined;
  readonly confirm: boolean;
  readonly reuse?: "disallow" | "allow" | undefined;
  readonly force: boolean;
  readonly label?: string | undefined;
  readonly issuer?: string | undefined;
  readonly quiet: boolean;
  /** undefined: not given (default UTF8 on a terminal, nothing otherwise). */
  readonly qrMode?: QrMode | "NONE" | undefined;
  /** undefined: ask; null: -u (no rate limit). */
  readonly rateLimit?: { readonly attempts: number; readonly intervalSeconds: number } | null | undefined;
  readonly secret?: string | undefined;
  readonly stepSeconds?: number | undefined;
  /** A number (-w), "minimal" (-W) or undefined (ask). */
  readonly window?: number | "minimal" | undefined;
  readonly emergencyCodes: number;
  readonly user?: string | undefined;
  readonly algorithm: Algorithm;
  readonly digits: number;
  readonly qrPng?: string | undefined;
  readonly qrSvg?: string | undefined;
  /** --store and its files: enroll into the fleet database (with --user) instead of a state file. */
  readonly store: StoreValues;
}

const GA = "google-authenticator's flags:";
const OWN = "otpgate's own:";

/** The flags, as parsed and as --help lists them (otpgate enroll's help is built from this). */
export const ENROLL_OPTIONS = {
  "time-based": { type: "boolean", short: "t", group: GA, help: "time-based codes (TOTP)", note: "non-interactive default" },
  "counter-based": { type: "boolean", short: "c", group: GA, help: "counter-based codes (HOTP)" },
  "disallow-reuse": { type: "boolean", short: "d", group: GA, help: "a code works once (needs -t)", note: "non-interactive default" },
  "allow-reuse": { type: "boolean", short: "D", group: GA, help: "a code may be reused within its time step (needs -t)" },
  force: { type: "boolean", short: "f", group: GA, help: "replace an existing enrollment, and do not ask before writing" },
  label: { type: "string", short: "l", value: "LABEL", group: GA, help: "account name in the app (default USER@HOSTNAME)" },
  issuer: { type: "string", short: "i", value: "ISSUER", group: GA, help: 'issuer shown in the app (default HOSTNAME; "" for none)' },
  quiet: { type: "boolean", short: "q", group: GA, help: "show no QR code, secret or codes" },
  "qr-mode": {
    type: "string",
    short: "Q",
    value: "MODE",
    group: GA,
    help: "NONE, UTF8 (default), UTF8_INVERSE, UTF8_GREY, ANSI, ANSI_INVERSE or ANSI_GREY; given explicitly, the QR code is drawn even when stdout is not a terminal",
  },
  "rate-limit": { type: "string", short: "r", value: "N", group: GA, help: "at most N (1-10) logins per ...", note: "non-interactive default 3" },
  "rate-time": { type: "string", short: "R", value: "M", group: GA, help: "... M (15-600) seconds", note: "non-interactive default 30" },
  "no-rate-limit": { type: "boolean", short: "u", group: GA, help: "no rate limit" },
  secret: { type: "string", short: "s", value: "FILE", group: GA, help: "state file (default ~USER/.google_authenticator)" },
  "step-size": { type: "string", short: "S", value: "S", group: GA, help: "30 (default) or 60 seconds per code" },
  "window-size": { type: "string", short: "w", value: "W", group: GA, help: "codes accepted around now: 3-21 (time-based), 1-21 (counter)" },
  "minimal-window": { type: "boolean", short: "W", group: GA, help: "3 (time-based) or 1 (counter-based)", note: "non-interactive default" },
  "emergency-codes": { type: "string", short: "e", value: "N", group: GA, help: "0-10 emergency codes (default 5)" },
  "no-confirm": { type: "boolean", short: "C", group: GA, help: "do not ask for a code from the app before saving" },
  user: { type: "string", value: "NAME", group: OWN, help: "enroll NAME (root only): the file lands in NAME's home, owned by NAME" },
  algorithm: { type: "string", value: "ALG", group: OWN, help: "SHA1 (default), SHA256 or SHA512" },
  digits: { type: "string", value: "N", group: OWN, help: "6 (default), 7 or 8" },
  "qr-png": { type: "string", value: "FILE", group: OWN, help: "also write the QR code as a PNG (mode 0600: it holds the secret)" },
  "qr-svg": {
    type: "string",
    value: "FILE",
    group: OWN,
    help: "also write the QR code as an SVG (mode 0600); checked before anything is written. With --user, written as that user, except into a directory only root can write (e.g. /root), which root writes",
  },
  store: { ...STORE_OPTIONS.store, group: OWN, help: "enroll --user NAME into the fleet database, postgres://USER@HOST:PORT/DB (root only; see otpgate db --help)" },
  "db-password-file": { ...STORE_OPTIONS["db-password-file"], group: OWN },
  "db-key-file": { ...STORE_OPTIONS["db-key-file"], group: OWN },
  help: { ...HELP_OPTION.help, group: OWN },
} as const satisfies DescribedTable;

const OPTIONS = ENROLL_OPTIONS;

const SHORT: Record<string, string> = Object.fromEntries(Object.entries(OPTIONS).map(([name, o]) => [name, "short" in o ? `-${o.short}` : `--${name}`]));

function int(flag: string, value: string, min: number, max: number, message?: string): number {
  if (!/^-?[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(message ?? `${flag} requires an argument in the range ${min}..${max}, not "${value}"`);
  }
  return Number(value);
}

export function parseEnrollFlags(argv: string[]): EnrollFlags {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/\. To specify a positional argument.*$/s, "")}; see otpgate enroll --help`);
  }
  const { values: v, positionals, tokens } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"; see otpgate enroll --help`);

  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== "option" || t.name === "no-confirm") continue;
    const group =
      t.name === "time-based" || t.name === "counter-based"
        ? "mode"
        : t.name === "window-size" || t.name === "minimal-window"
          ? "window"
          : t.name === "disallow-reuse" || t.name === "allow-reuse"
            ? "reuse"
            : t.name;
    if (seen.has(group)) {
      const what = group === "mode" ? "-c and/or -t" : group === "window" ? "-w/-W" : group === "reuse" ? "-d and/or -D" : SHORT[t.name];
      throw new UsageError(`Duplicate ${what} option detected`);
    }
    seen.add(group);
  }

  const mode = v["time-based"] ? "totp" : v["counter-based"] ? "hotp" : undefined;
  const reuse = v["disallow-reuse"] ? "disallow" : v["allow-reuse"] ? "allow" : undefined;
  if (reuse && mode === "hotp") throw new UsageError("Reuse of tokens is not a meaningful parameter in counter-based mode");
  if (reuse && mode !== "totp") throw new UsageError("Must select time-based mode, when using -d or -D");

  let rateLimit: EnrollFlags["rateLimit"];
  const r = v["rate-limit"];
  const rt = v["rate-time"];
  if (v["no-rate-limit"]) {
    if (r !== undefined || rt !== undefined) throw new UsageError("-u (no rate limit) cannot be combined with -r or -R");
    rateLimit = null;
  } else if (r !== undefined || rt !== undefined) {
    if (r === undefined || rt === undefined) throw new UsageError("Must set -r when setting -R, and vice versa");
    rateLimit = { attempts: int("-r", r, 1, 10), intervalSeconds: int("-R", rt, 15, 600) };
  }

  let stepSeconds: number | undefined;
  if (v["step-size"] !== undefined) {
    stepSeconds = int("-S", v["step-size"], 1, 60);
    if (stepSeconds !== 30 && stepSeconds !== 60) {
      throw new UsageError(`-S ${stepSeconds}: authenticator apps make a new code every 30 seconds (some can do 60), so with any other step every code would fail; use -S 30 or -S 60`);
    }
  }

  let window: EnrollFlags["window"];
  if (v["minimal-window"]) window = "minimal";
  if (v["window-size"] !== undefined) window = int("-w", v["window-size"], 1, 21);

  const algorithmText = (v.algorithm ?? "SHA1").toUpperCase().replace("-", "");
  const algorithm = ALGORITHMS.find((a) => a === algorithmText);
  if (!algorithm) throw new UsageError(`--algorithm must be SHA1, SHA256 or SHA512, not "${v.algorithm}"`);
  const digits = v.digits === undefined ? 6 : int("--digits", v.digits, 6, 8);

  return {
    help: v.help === true,
    mode,
    confirm: !v["no-confirm"],
    reuse,
    force: v.force === true,
    label: v.label,
    issuer: v.issuer,
    quiet: v.quiet === true,
    qrMode: v["qr-mode"] === undefined ? undefined : parseQrMode(v["qr-mode"]),
    rateLimit,
    secret: v.secret,
    stepSeconds,
    window,
    emergencyCodes: v["emergency-codes"] === undefined ? 5 : int("-e", v["emergency-codes"], 0, MAX_SCRATCH_CODES),
    user: v.user,
    algorithm,
    digits,
    qrPng: v["qr-png"],
    qrSvg: v["qr-svg"],
    store: { store: v.store, "db-password-file": v["db-password-file"], "db-key-file": v["db-key-file"] },
  };
}

/** Window checks that depend on the mode: a time-based window below 3 fails at every step boundary. */
export function windowFor(mode: "totp" | "hotp", window: EnrollFlags["window"]): number | undefined {
  if (window === undefined) return undefined;
  if (window === "minimal") return mode === "totp" ? 3 : 1;
  if (mode === "totp" && window < 3) {
    throw new UsageError(
      `-w ${window}: a time-based window below 3 refuses a correct code whenever it is typed across a ${"30-second"} step boundary or the clocks differ by a second; use -w 3 to 21 (-W is 3)`,
    );
  }
  return window;
}
