// otpgate qr: show an enrolled account's QR code and secret again (to set up a new phone).

import { hostname } from "node:os";
import { groupSecret, keyUriFor } from "../../../core/enroll.js";
import { ENROLL_HINT, StateFileError, type ExitCode } from "../../../core/errors.js";
import { secretLine } from "../../../formats/ga-document.js";
import { summarize } from "../../../formats/ga-file.js";
import { decodeGaSecret, base32Encode } from "../../../core/base32.js";
import { ACCOUNT_OPTIONS, openAccount } from "./account-options.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { parseQrMode, showQr } from "../qr-output.js";
import { asItself, planQrTargets, prepareQrFiles, type QrTarget } from "../qr-targets.js";
import { STORE_OPTIONS } from "../store-options.js";
import { handOverToFleet, wantsFleet } from "../fleet-handover.js";

export const options = {
  ...ACCOUNT_OPTIONS,
  "qr-mode": { type: "string", short: "Q", value: "MODE", help: "UTF8 (default), UTF8_INVERSE, UTF8_GREY, ANSI, ANSI_INVERSE, ANSI_GREY or NONE" },
  label: { type: "string", short: "l", value: "LABEL", help: "account name in the app (default USER@HOSTNAME)" },
  issuer: { type: "string", short: "i", value: "ISSUER", help: 'issuer in the app (default HOSTNAME; "" for none)' },
  "qr-png": { type: "string", value: "FILE", help: "write the QR code as a PNG (mode 0600, a new file: a symlink or file already there is replaced, never written through)" },
  "qr-svg": { type: "string", value: "FILE", help: "write the QR code as an SVG (the same)" },
  force: { type: "boolean", short: "f", help: "replace existing PNG/SVG files" },
  ...STORE_OPTIONS,
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "qr",
  {
    usage: ["[-s FILE | --user NAME] [options]", "--user NAME --store URL [options]   (root: the fleet database)"],
    about: `
Show the QR code, secret and otpauth URI of an enrolled account again, e.g. to add a new
phone. Only the file's owner can do this; root can for any user, with a warning. Anyone who
sees the output can generate the account's codes. With --store: the account in the fleet
database.`,
    after: "Exit status: 0 shown, 1 not enrolled, 2 usage or file error.",
  },
  options,
);

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("qr", argv, options);
  if (values.help) {
    io.out(help);
    return 0;
  }
  if (wantsFleet(values)) return handOverToFleet("qr", argv, io);
  parseQrMode(values["qr-mode"] ?? "UTF8"); // a wrong mode is refused before anything is read
  const { user, store, forOther } = openAccount(values);
  const text = store.peek();
  if (text === null) {
    io.err(`${user.name} is not enrolled (no ${store.path}); ${ENROLL_HINT}`);
    return 1;
  }
  // Checked before anything is shown; written by the same writer as enroll's (never through a planted file).
  const qrTargets = planQrTargets({ png: values["qr-png"], svg: values["qr-svg"] }, { overwrite: values.force === true, rootForOther: false, asRoot: asItself, user: user.name });
  if (forOther) io.err(`warning: showing ${user.name}'s secret; anyone who sees it can generate ${user.name}'s codes`);
  return showKey(io, text, user.name, values, qrTargets, store.path);
}

export type QrValues = ReturnType<typeof parse<typeof options>>["values"];

/** The QR code, secret and URI of `text` (a state text: the file's or the fleet database's), and the image files. */
export async function showKey(io: Output, text: string, user: string, values: QrValues, qrTargets: readonly QrTarget[], location: string): Promise<ExitCode> {
  const qrMode = parseQrMode(values["qr-mode"] ?? "UTF8");
  const summary = summarize(text);
  const key = decodeGaSecret(secretLine(text));
  if (!key || !summary.otp || summary.otp.mode === "none") {
    key?.fill(0);
    throw new StateFileError(`${location} has no usable secret or no TOTP_AUTH/HOTP_COUNTER line, so there is nothing to scan; ${ENROLL_HINT}`);
  }
  const secret = base32Encode(key);
  key.fill(0);
  const host = hostname() || "unix";
  const uri = keyUriFor(
    {
      mode: summary.otp.mode,
      label: values.label ?? `${user}@${host}`,
      issuer: values.issuer ?? host,
      stepSeconds: summary.otp.mode === "totp" && summary.stepSeconds !== 30 ? (summary.stepSeconds ?? undefined) : undefined,
      algorithm: summary.otp.algorithm,
      digits: summary.otp.digits,
    },
    secret,
  );
  if (qrMode !== "NONE") await showQr(io, uri, qrMode);
  io.out(`Secret key: ${groupSecret(secret)}`);
  io.out(`otpauth URI: ${uri}`);
  const images = (await prepareQrFiles(qrTargets, uri, asItself, "qr")).commit();
  if (images.length) io.err(`QR code written to ${images.join(", ")} (mode 0600: delete it once scanned)`);
  return 0;
}
