// google-authenticator's command-line flags, with the same meanings and checks (and the same
// messages where it has them), plus otpgate's own (--user, --algorithm, --digits, --qr-png/--qr-svg).

import { parseArgs } from "node:util";
import { UsageError } from "../../../core/errors.js";
import { ALGORITHMS, type Algorithm } from "../../../core/otp.js";
import type { QrMode } from "../../../core/qr-render.js";
import { MAX_SCRATCH_CODES } from "../../../core/enroll.js";
import { parseQrMode } from "../qr-output.js";

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
}

const OPTIONS = {
  "time-based": { type: "boolean", short: "t" },
  "counter-based": { type: "boolean", short: "c" },
  "no-confirm": { type: "boolean", short: "C" },
  "disallow-reuse": { type: "boolean", short: "d" },
  "allow-reuse": { type: "boolean", short: "D" },
  force: { type: "boolean", short: "f" },
  label: { type: "string", short: "l" },
  issuer: { type: "string", short: "i" },
  quiet: { type: "boolean", short: "q" },
  "qr-mode": { type: "string", short: "Q" },
  "rate-limit": { type: "string", short: "r" },
  "rate-time": { type: "string", short: "R" },
  "no-rate-limit": { type: "boolean", short: "u" },
  secret: { type: "string", short: "s" },
  "step-size": { type: "string", short: "S" },
  "window-size": { type: "string", short: "w" },
  "minimal-window": { type: "boolean", short: "W" },
  "emergency-codes": { type: "string", short: "e" },
  help: { type: "boolean", short: "h" },
  user: { type: "string" },
  algorithm: { type: "string" },
  digits: { type: "string" },
  "qr-png": { type: "string" },
  "qr-svg": { type: "string" },
} as const;

const SHORT: Record<string, string> = Object.fromEntries(
  Object.entries(OPTIONS).map(([name, o]) => [name, "short" in o ? `-${o.short}` : `--${name}`]),
);

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
      t.name === "time-based" || t.name === "counter-based" ? "mode"
      : t.name === "window-size" || t.name === "minimal-window" ? "window"
      : t.name === "disallow-reuse" || t.name === "allow-reuse" ? "reuse"
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
      throw new UsageError(
        `-S ${stepSeconds}: authenticator apps make a new code every 30 seconds (some can do 60), so with any other step every code would fail; use -S 30 or -S 60`,
      );
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
