// otpgate enroll: google-authenticator's enrollment, flags and questions included, done safely:
// the secret goes to no third party, the QR shows without extra libraries, one code from the app
// can be confirmed before anything is saved, and the file is written atomically, mode 0400.

import { closeSync, constants, existsSync, openSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type * as Tty from "node:tty";
import { confirmsNewSecret, drawCredentials, enrollmentText, groupSecret, keyUriFor } from "../../../core/enroll.js";
import { ConfigError, UsageError, type ExitCode } from "../../../core/errors.js";
import { decodeGaSecret } from "../../../core/base32.js";
import { createCodeGenerator, formatCode } from "../../../core/otp.js";
import { formatScratchCode } from "../../../formats/ga-document.js";
import { builtin } from "../../../platform/builtin.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { actAs } from "../../../platform/privileges.js";
import { systemRandom } from "../../../platform/random.js";
import { resolveTarget } from "../../../stores/resolve-account.js";
import { writeNewStateFile } from "../../../stores/file-store.js";
import type { Output } from "../output.js";
import { Cancelled, terminalPrompter, type Prompter } from "../prompt.js";
import { showQr } from "../qr-output.js";
import { planQrTargets, prepareQrFiles, type AsRoot, type QrTarget } from "../qr-targets.js";
import { commandHelp } from "../help.js";
import { ENROLL_OPTIONS, parseEnrollFlags, windowFor } from "./enroll-flags.js";
import { handOverToFleet, wantsFleet } from "../fleet-handover.js";

export const options = ENROLL_OPTIONS;

export const help = commandHelp(
  "enroll",
  {
    usage: ["[options]"],
    about: `
Create a google-authenticator state file (~/.google_authenticator) for a user: a new
secret, a QR code for the authenticator app, emergency codes. Takes google-authenticator's
flags and asks its questions when stdin is a terminal; otherwise unanswered questions take
the defaults shown below and nothing is read from stdin.`,
    after: `
SHA256/SHA512 and 7-8 digits are not understood by pam_google_authenticator.so: with them
it refuses every one-time code (emergency codes still work there).

Exit status: 0 saved (or declined at the "update your file" question), 1 cancelled (end of
input or Ctrl-C before saving), 2 usage or file error (nothing written).

Examples:
  otpgate enroll                                   # interactive, like google-authenticator
  otpgate enroll -t -d -f -r 3 -R 30 -W -Q UTF8    # no questions
  sudo otpgate enroll --user alice -t -d -W -r 3 -R 30 --qr-png /root/alice.png`,
  },
  options,
);

const QUESTIONS = {
  timeBased: "Do you want authentication tokens to be time-based",
  reuse:
    "Do you want to disallow multiple uses of the same authentication\ntoken? This restricts you to one login about every 30s, but it increases\nyour chances to notice or even prevent man-in-the-middle attacks",
  totpWindow:
    "By default, a new token is generated every 30 seconds by the mobile app.\nIn order to compensate for possible time-skew between the client and the server,\nwe allow an extra token before and after the current time. This allows for a\ntime skew of up to 30 seconds between authentication server and client. If you\nexperience problems with poor time synchronization, you can increase the window\nfrom its default size of 3 permitted codes (one previous code, the current\ncode, the next code) to 17 permitted codes (the 8 previous codes, the current\ncode, and the 8 next codes). This will permit for a time skew of up to 4 minutes\nbetween client and server.\nDo you want to do so?",
  hotpWindow:
    "By default, three tokens are valid at any one time.  This accounts for\ngenerated-but-not-used tokens and failed login attempts. In order to\ndecrease the likelihood of synchronization problems, this window can be\nincreased from its default size of 3 to 17. Do you want to do so?",
  rateLimit:
    "If the computer that you are logging into isn't hardened against brute-force\nlogin attempts, you can enable rate-limiting for the authentication module.\nBy default, this limits attackers to no more than 3 login attempts every 30s.\nDo you want to enable rate-limiting?",
};

/**
 * Fail before the dialog if the file cannot be created: probe the directory with the effective
 * uid (access(2) would answer for the real uid, root).
 */
function checkWritableDirectory(path: string, user: string): void {
  const probe = `${path}~otpgate-probe-${process.pid}`;
  try {
    closeSync(openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
    unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === "ENOENT"
        ? `the directory ${dirname(path)} does not exist; create it or choose another file with -s`
        : `${user} cannot write to ${dirname(path)} (${code}); the state file and its temp file are created there: fix the directory's permissions or choose another file with -s`,
    );
  }
}

function isTty(fd: number): boolean {
  return builtin<typeof Tty>("node:tty").isatty(fd);
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const flags = parseEnrollFlags(argv);
  if (flags.help) {
    io.out(help);
    return 0;
  }
  if (wantsFleet(flags.store)) return handOverToFleet("enroll", argv, io);
  const euid = process.geteuid?.() ?? 0;
  const target = resolveTarget({ user: flags.user, secret: flags.secret, euid, cwd: process.cwd() });
  const path = target.path;
  let restore = actAs(target.user.uid, target.user.gid);
  const asRoot: AsRoot = (fn) => {
    restore();
    try {
      return fn();
    } finally {
      restore = actAs(target.user.uid, target.user.gid);
    }
  };

  if (existsSync(path) && !flags.force) {
    throw new UsageError(`${target.user.name} is already enrolled (${path} exists); pass -f/--force to replace it (the old secret and emergency codes stop working)`);
  }
  checkWritableDirectory(path, target.user.name);
  // Every output is checked now, before any question, and written before the state file.
  const qrTargets = planQrTargets({ png: flags.qrPng, svg: flags.qrSvg }, { overwrite: flags.force, rootForOther: euid === 0 && target.user.uid !== 0, asRoot, user: target.user.name });

  const destination: EnrollDestination = {
    question: `Do you want me to update your "${path}" file?`,
    save: async (text) => writeNewStateFile(path, text, { replace: flags.force }),
    saved: `${path} (mode 0400)`,
  };
  return enrollWithDialog(io, flags, target.user.name, destination, qrTargets, asRoot);
}

/** The dialog on the terminal when stdin is one (defaults otherwise); Ctrl-C or end of input cancels with exit 1. */
export async function enrollWithDialog(
  io: Output,
  flags: ReturnType<typeof parseEnrollFlags>,
  user: string,
  destination: EnrollDestination,
  qrTargets: readonly QrTarget[],
  asRoot: AsRoot,
): Promise<ExitCode> {
  if (flags.algorithm !== "SHA1" || flags.digits !== 6) {
    io.err("warning: pam_google_authenticator.so only checks SHA1 codes with 6 digits; for this account it will refuse every one-time code (emergency codes still work there). otpgate checks them.");
  }
  const prompter = isTty(0) ? terminalPrompter(io) : null;
  try {
    return await dialog(io, prompter, flags, user, destination, qrTargets, asRoot);
  } catch (err) {
    if (err instanceof Cancelled) {
      io.err("enrollment cancelled; nothing was written");
      return 1;
    }
    throw err;
  } finally {
    prompter?.close();
  }
}

/** Where an enrollment is saved: the state file, or the fleet database (fleet-enroll.ts). */
export interface EnrollDestination {
  /** The question asked before saving (interactive, without -f). */
  readonly question: string;
  /** Saves the new state; throws (nothing saved) when it cannot. */
  save(text: string): Promise<void>;
  /** What was saved, for the last line: "saved <this> for USER". */
  readonly saved: string;
}

/** The questions, the QR code and the codes shown once, then `destination.save`: shared by the file and fleet enrollments. */
export async function dialog(
  io: Output,
  ask: Prompter | null,
  flags: ReturnType<typeof parseEnrollFlags>,
  user: string,
  destination: EnrollDestination,
  qrTargets: readonly QrTarget[],
  asRoot: AsRoot,
): Promise<ExitCode> {
  const defaulted: string[] = [];
  const answer = async (question: string, fallback: boolean, what: string): Promise<boolean> => {
    if (ask) return ask.yesNo(question);
    defaulted.push(what);
    return fallback;
  };

  const mode = flags.mode ?? ((await answer(QUESTIONS.timeBased, true, "time-based")) ? "totp" : "hotp");
  const windowFromFlags = windowFor(mode, flags.window);
  const host = hostname() || "unix";
  const settingsSoFar = {
    mode,
    label: flags.label ?? `${user}@${host}`,
    issuer: flags.issuer ?? host,
    stepSeconds: mode === "totp" ? flags.stepSeconds : undefined,
    algorithm: flags.algorithm,
    digits: flags.digits,
  } as const;

  // Draw the credentials first; the file's text is built once the last question is answered.
  const draft = drawCredentials(flags.emergencyCodes, systemRandom);
  const uri = keyUriFor(settingsSoFar, draft.secret);

  if (!flags.quiet) {
    const qrMode = flags.qrMode ?? (isTty(1) ? "UTF8" : "NONE");
    if (qrMode !== "NONE") await showQr(io, uri, qrMode);
    io.out(`Your new secret key is: ${groupSecret(draft.secret)}`);
    io.out(`otpauth URI (for apps that import it): ${uri}`);
    const key = decodeGaSecret(draft.secret)!;
    const gen = createCodeGenerator(key, settingsSoFar, nodeMacFactory);
    if (mode === "totp" && flags.confirm && ask) {
      for (;;) {
        const typed = (await ask.line("Enter code from app (-1 to skip): ")).trim();
        if (/^-[0-9]+$/.test(typed)) {
          io.out("Code confirmation skipped");
          break;
        }
        if (!new RegExp(`^[0-9]{${settingsSoFar.digits}}$`).test(typed)) {
          io.out(`Please type the ${settingsSoFar.digits}-digit code the app shows, or -1 to skip.`);
          continue;
        }
        if (confirmsNewSecret(draft.secret, settingsSoFar, typed, systemClock.nowMs(), nodeMacFactory)) {
          io.out("Code confirmed");
          break;
        }
        io.out("Code incorrect. Check that the app's clock is set automatically, then try again.");
      }
    } else if (mode === "hotp") {
      io.out(`Your verification code for code 1 is ${formatCode(gen(1), settingsSoFar.digits)}`);
    } else if (mode === "totp" && flags.confirm && !ask) {
      defaulted.push("no code confirmation (no terminal)");
    }
    key.fill(0);
    if (flags.emergencyCodes > 0) {
      io.out("Your emergency scratch codes are:");
      for (const code of draft.scratchCodes) io.out(`  ${formatScratchCode(code)}`);
    }
  }

  if (!flags.force && ask && !(await ask.yesNo(destination.question))) {
    io.out("Nothing was written.");
    return 0;
  }

  let disallowReuse = false;
  if (mode === "totp") disallowReuse = flags.reuse ? flags.reuse === "disallow" : await answer(QUESTIONS.reuse, true, "disallow reuse");
  let windowSize = windowFromFlags;
  if (windowSize === undefined && (await answer(mode === "totp" ? QUESTIONS.totpWindow : QUESTIONS.hotpWindow, false, "default window (3)"))) windowSize = 17;
  let rateLimit = flags.rateLimit ?? undefined;
  if (flags.rateLimit === undefined && (await answer(QUESTIONS.rateLimit, true, "rate limit 3 per 30 s"))) rateLimit = { attempts: 3, intervalSeconds: 30 };

  const text = enrollmentText({ ...settingsSoFar, disallowReuse, windowSize, rateLimit }, draft);
  const qr = await prepareQrFiles(qrTargets, uri, asRoot);
  try {
    await destination.save(text);
  } catch (err) {
    qr.discard();
    throw err;
  }
  if (defaulted.length > 0) io.err(`stdin is not a terminal, so these defaults were used: ${defaulted.join(", ")}`);
  const images = qr.commit();
  const owners = qrTargets.some((t) => t.asRoot) ? ", owned by root where the directory is root's" : "";
  io.err(`saved ${destination.saved} for ${user}${images.length ? `; QR code also in ${images.join(", ")} (mode 0600${owners}: delete it once scanned)` : ""}`);
  return 0;
}
