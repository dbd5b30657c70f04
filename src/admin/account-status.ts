// What `otpgate status` reports about one account: enrollment, settings, emergency codes left, the
// last accepted code and the rate-limit state. Never the secret or a code. Every file operation goes
// through the store (as the account's owner when root asks); a problem with one account is that
// account's row (`error`), never an exception that would abort status --all or doctor for everyone.
import { isRateLimited } from "../core/rate-limit.js";
import { OtpgateError } from "../core/errors.js";
import { getOption } from "../formats/ga-document.js";
import { summarize } from "../formats/ga-file.js";
import { FileAccountStore } from "../stores/file-store.js";

export interface AccountStatus {
  readonly user: string;
  readonly file: string;
  readonly enrolled: boolean;
  /** Why the file cannot be used, when it exists but is refused (permissions, owner, content). */
  readonly error?: string;
  readonly mode?: "totp" | "hotp" | "none";
  readonly algorithm?: string;
  readonly digits?: number;
  readonly stepSeconds?: number;
  readonly windowSize?: number;
  readonly disallowReuse?: boolean;
  readonly rateLimit?: { readonly attempts: number; readonly intervalSeconds: number } | null;
  readonly rateLimitedNow?: boolean;
  readonly recentAttempts?: number;
  readonly emergencyCodesLeft?: number;
  readonly hotpCounter?: number;
  readonly timeSkewSteps?: number;
  /** Unix seconds: start of the newest time step in DISALLOW_REUSE, or the newest LASTn entry. */
  readonly lastAcceptedAt?: number | null;
  readonly fileMode?: string;
  readonly problems?: readonly string[];
}

function lastAccepted(text: string, stepSeconds: number): number | null {
  let latest: number | null = null;
  const reuse = getOption(text, "DISALLOW_REUSE");
  for (const token of reuse?.split(/[ \t]+/) ?? []) {
    if (/^[0-9]+$/.test(token)) latest = Math.max(latest ?? 0, Number(token) * stepSeconds);
  }
  for (let i = 0; i <= 9; i++) {
    const m = /[ \t]([0-9]+)$/.exec(getOption(text, `LAST${i}`) ?? "");
    if (m) latest = Math.max(latest ?? 0, Number(m[1]));
  }
  return latest;
}

export function accountStatus(store: FileAccountStore, user: string, nowMs: number): AccountStatus {
  const file = store.path;
  try {
    return statusOf(store, user, nowMs);
  } catch (err) {
    const message =
      err instanceof OtpgateError
        ? err.message
        : `${file}: cannot be checked (${(err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err)}); try again, and check the file and its directories`;
    return { user, file, enrolled: true, error: message };
  }
}

function statusOf(store: FileAccountStore, user: string, nowMs: number): AccountStatus {
  const file = store.path;
  const read = store.peekWithMode();
  if (read === null) return { user, file, enrolled: false };
  return { ...statusOfText(user, file, read.text, nowMs), fileMode: "0" + (read.mode & 0o777).toString(8) };
}

/** The status of an enrolled account from its state text (the file's, or the fleet database's). */
export function statusOfText(user: string, file: string, text: string, nowMs: number): AccountStatus {
  const s = summarize(text);
  const now = Math.floor(nowMs / 1000);
  const stepSeconds = s.stepSeconds ?? 30;
  const recent = s.rateLimit ? s.rateLimit.stamps.filter((t) => t >= now - s.rateLimit!.intervalSeconds && t <= now).length : 0;
  return {
    user,
    file,
    enrolled: true,
    mode: s.otp?.mode ?? "none",
    algorithm: s.otp?.algorithm ?? "SHA1",
    digits: s.otp?.digits ?? 6,
    stepSeconds,
    windowSize: s.windowSize ?? 3,
    disallowReuse: s.disallowReuse,
    rateLimit: s.rateLimit ? { attempts: s.rateLimit.attempts, intervalSeconds: s.rateLimit.intervalSeconds } : null,
    rateLimitedNow: s.rateLimit ? isRateLimited(s.rateLimit, now) : false,
    recentAttempts: recent,
    emergencyCodesLeft: s.scratchCodesLeft,
    ...(s.otp?.mode === "hotp" ? { hotpCounter: s.otp.counter } : {}),
    timeSkewSteps: s.timeSkewSteps,
    lastAcceptedAt: s.otp?.mode === "totp" || s.otp?.mode === undefined ? lastAccepted(text, stepSeconds) : null,
    problems: s.problems,
  };
}
