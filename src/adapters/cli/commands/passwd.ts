// otpgate passwd: set or remove a user's password for the gateway's optional password factor.

import type * as Tty from "node:tty";
import { OtpgateError, UsageError, type ExitCode } from "../../../core/errors.js";
import { passwordEntryNameProblem, passwordProblem } from "../../../core/web/password-entries.js";
import { builtin } from "../../../platform/builtin.js";
import { lookupUserByName } from "../../../platform/users.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import { readHidden } from "../hidden-input.js";
import type { Output } from "../output.js";
import { asFileOwner, ownerOf, type FileOwner } from "./gateway-file-owner.js";
import { Cancelled } from "../prompt.js";
import { readStdin } from "../stdin.js";

export const options = {
  file: { type: "string", value: "FILE", help: "the password file (default /etc/otpgate/passwords)" },
  config: { type: "string", value: "FILE", help: "take the file from a gateway configuration's password_file" },
  delete: { type: "boolean", help: "remove USER's password (the gateway then refuses USER)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "passwd",
  {
    usage: ["USER [--file FILE | --config GATEWAY.yaml] [--delete]"],
    about: `
Sets USER's password for otpgate gateway's password factor (password_file in the gateway's
configuration): an argon2id hash (64 MiB, 3 passes, 4 lanes) in a file like htpasswd, mode
0600. On a terminal the password is asked twice without echo; otherwise one line is read from
standard input (printf '%s\\n' "$PW" | otpgate passwd alice). The gateway reads the file at
every login: no restart needed.`,
  },
  options,
);

/**
 * The file, and whom to write it as when run by root: the gateway's user (the configuration's
 * user:), or else whoever owns the file (or its directory) when that is not root; never root into
 * a directory the gateway's user owns (and the gateway must still be able to read the file).
 */
async function passwordFile(values: { file?: string | undefined; config?: string | undefined }): Promise<{ file: string; owner: FileOwner | null }> {
  if (values.file && values.config) throw new UsageError("give --file or --config, not both");
  if (values.file) return { file: values.file, owner: ownerOf(values.file) };
  if (values.config) {
    const { loadGatewayConfig, resolveRunAs } = await import("../../http/gateway-entry.js");
    const config = loadGatewayConfig(values.config);
    if (!config.passwordFile) throw new UsageError(`${values.config} has no password_file; add one (e.g. password_file: /etc/otpgate/passwords) to turn the password factor on`);
    const owner = config.runAs !== null && process.geteuid?.() === 0 ? resolveRunAs(config.runAs, values.config) : ownerOf(config.passwordFile);
    return { file: config.passwordFile, owner };
  }
  const { DEFAULT_PASSWORD_FILE } = await import("../../../stores/password-file.js");
  return { file: DEFAULT_PASSWORD_FILE, owner: ownerOf(DEFAULT_PASSWORD_FILE) };
}

async function readNewPassword(io: Output): Promise<string> {
  if (builtin<typeof Tty>("node:tty").isatty(0)) {
    const first = await readHidden(io, "New password: ");
    const problem = passwordProblem(first);
    if (problem) throw new OtpgateError(`${problem}; nothing was changed`, 1);
    if ((await readHidden(io, "Retype new password: ")) !== first) throw new OtpgateError("the two passwords differ; nothing was changed", 1);
    return first;
  }
  const raw = (await readStdin(1100, 10_000)).toString("utf8");
  const line = raw.replace(/\r?\n$/, "");
  if (line.includes("\n") || raw.length > 1025) throw new UsageError("standard input must be one line: the password; nothing was changed");
  const problem = passwordProblem(line);
  if (problem) throw new OtpgateError(`${problem}; nothing was changed`, 1);
  return line;
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("passwd", argv, options);
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("give exactly one user name; see otpgate passwd --help");
  const user = positionals[0]!;
  // The one rule of every front-end (core/user-name.ts), plus what the file's syntax cannot hold.
  const problem = passwordEntryNameProblem(user);
  if (problem !== null) throw new UsageError(`the user name ${JSON.stringify(user)} cannot be used: it ${problem}`);
  const { file, owner } = await passwordFile(values);
  const { existingPasswords, updatePasswordFile } = await import("../../../stores/password-file.js");
  await asFileOwner(owner, async () => existingPasswords(file)); // a file it could not use is reported before any password is typed
  if (values.delete) {
    await asFileOwner(owner, () => updatePasswordFile(file, user, null));
    io.err(`removed ${user}'s password from ${file}`);
    return 0;
  }
  let password: string;
  try {
    password = await readNewPassword(io);
  } catch (err) {
    if (err instanceof Cancelled) {
      io.err("cancelled; nothing was changed");
      return 1;
    }
    throw err;
  }
  if (!lookupUserByName(user)) io.err(`warning: there is no account "${user}" (getent passwd); the gateway signs in existing accounts only`);
  const { hashPassword } = await import("../../../platform/password-hash.js");
  const hash = await hashPassword(password);
  await asFileOwner(owner, () => updatePasswordFile(file, user, hash));
  io.err(`password set for ${user} in ${file}`);
  return 0;
}
