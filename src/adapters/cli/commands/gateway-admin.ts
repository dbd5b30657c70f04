// otpgate gateway keys / otpgate gateway sessions: key rotation and "log out everywhere" for a
// gateway's files (keys_file, sessions_file), run next to a running gateway, which notices the
// change within about a second.

import { OtpgateError, UsageError, type ExitCode } from "../../../core/errors.js";
import { userNameProblem } from "../../../core/user-name.js";
import { systemClock } from "../../../platform/clock.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { asFileOwner } from "./gateway-file-owner.js";

export const keysOptions = {
  config: { type: "string", value: "FILE", help: "the gateway's configuration" },
  rotate: { type: "boolean", help: "add a new key: from now on it seals sessions, CSRF tokens and enrollment pages; cookies sealed with older keys keep working until they expire" },
  "retire-old": {
    type: "boolean",
    help: "drop every key older than the newest. Refused until the newest key is older than session.absolute (+1 minute): sessions sealed with the old keys could still be open, and they end when their key is dropped",
  },
  force: { type: "boolean", help: "with --retire-old: drop them now (those sessions end at once)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const keysHelp = commandHelp(
  "gateway keys",
  {
    usage: ["--config FILE [--rotate] [--retire-old [--force]]"],
    about: `
Without --rotate or --retire-old: lists the keys in keys_file (id, when added; the newest
seals new cookies).`,
    after: `
A running gateway picks up the change within a second. Run as root or the gateway's user
(with user: in the configuration, root writes the files as that user).`,
  },
  keysOptions,
);

export const sessionsOptions = {
  config: { type: "string", value: "FILE", help: "the gateway's configuration" },
  revoke: {
    type: "string",
    value: "USER",
    help: "log USER out everywhere: every session USER has now ends (a running gateway ends them, and their WebSocket connections, within a second); signing in again works. Also after a restart of the gateway",
  },
  list: { type: "boolean", help: "users logged out everywhere (and when), and the number of revoked sessions still stored (sessions themselves are not tracked)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const sessionsHelp = commandHelp(
  "gateway sessions",
  {
    usage: ["--config FILE --revoke USER", "--config FILE --list"],
    about: "Log a user out of the gateway everywhere, or list who was.",
    after: `
Run as root or the gateway's user (with user: in the configuration, root writes the files as
that user).`,
  },
  sessionsOptions,
);

async function config(path: string | undefined, command: string) {
  if (!path) throw new UsageError(`--config FILE is required; see otpgate gateway ${command} --help`);
  const { checkGatewayFiles, loadGatewayConfig, resolveRunAs } = await import("../../http/gateway-entry.js");
  const loaded = loadGatewayConfig(path); // its ConfigError (another bundle's class) is recognised by main.ts
  // The files belong to the gateway's user (user:) when it has one: written as that user, never as root.
  const owner = loaded.runAs !== null && process.geteuid?.() === 0 ? resolveRunAs(loaded.runAs, path) : null;
  checkGatewayFiles(loaded, path, owner?.uid ?? process.geteuid?.() ?? 0); // only where nobody else can change the directories
  return { ...loaded, owner };
}

export async function runKeys(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("gateway keys", argv, keysOptions);
  if (values.help) {
    io.out(keysHelp);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected "${positionals[0]}"; see otpgate gateway keys --help`);
  if (values.force && !values["retire-old"]) throw new UsageError("--force only goes with --retire-old");
  const cfg = await config(values.config, "keys");
  const { readKeyFile, rotateKeys } = await import("../../../platform/keyring.js");
  const { systemRandom } = await import("../../../platform/random.js");
  const now = systemClock.nowMs();
  if (values.rotate || values["retire-old"]) {
    const r = await asFileOwner(cfg.owner, () =>
      rotateKeys(cfg.keysFile, now, systemRandom, { rotate: values.rotate === true, retireOld: values["retire-old"] === true, force: values.force === true, absoluteMs: cfg.session.absoluteMs }),
    );
    if (r.retired.length) io.err(`retired key(s) ${r.retired.join(", ")}: sessions sealed with them have ended`);
    if (r.added) io.err(`added key ${r.added.kid}; it seals new sessions from now on (a running gateway picks it up within a second); older keys still open their sessions`);
    if (!r.added && !r.retired.length) io.err("only one key: nothing to retire");
  }
  const file = await asFileOwner(cfg.owner, async () => readKeyFile(cfg.keysFile));
  if (!file) throw new OtpgateError(`${cfg.keysFile} does not exist: the gateway creates it when it first starts`, 1);
  const newest = file.keys[file.keys.length - 1]!;
  for (const k of file.keys) io.out(`${k.kid}\tadded ${new Date(k.createdAt).toISOString()}${k === newest ? "\tseals" : "\topens only"}`);
  return 0;
}

export async function runSessions(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("gateway sessions", argv, sessionsOptions);
  if (values.help) {
    io.out(sessionsHelp);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected "${positionals[0]}"; see otpgate gateway sessions --help`);
  if ((values.revoke === undefined) === !values.list) throw new UsageError("give --revoke USER or --list; see otpgate gateway sessions --help");
  // The rule a login applies (src/core/user-name.ts): every name that can sign in can be logged out.
  const problem = values.revoke === undefined ? null : userNameProblem(values.revoke);
  if (problem !== null) throw new UsageError(`the user name ${JSON.stringify(values.revoke)} cannot be used: it ${problem}`);
  const cfg = await config(values.config, "sessions");
  if (cfg.store) return sharedSessions(cfg, values.revoke, io);
  const { revokeUserSessions, storedSessionDecisions } = await import("../../../stores/gateway-revoke.js");
  const files = { keysFile: cfg.keysFile, sessionsFile: cfg.sessionsFile };
  if (values.revoke !== undefined) {
    const revoke = values.revoke;
    const result = await asFileOwner(cfg.owner, () => revokeUserSessions(files, revoke, systemClock.nowMs()));
    if (result === "no-keys") throw new OtpgateError(`${cfg.keysFile} does not exist: this gateway has not started yet, so ${values.revoke} has no session; nothing was changed`, 1);
    io.err(`${values.revoke} is logged out everywhere: sessions started before now end (a running gateway ends them within a second); signing in again works`);
    return 0;
  }
  const state = await asFileOwner(cfg.owner, async () => storedSessionDecisions(files));
  if (!state) throw new OtpgateError(`${cfg.keysFile} does not exist: this gateway has not started yet`, 1);
  for (const [user, at] of [...state.validAfter].sort((a, b) => a[0].localeCompare(b[0]))) io.out(`${user}\tlogged out everywhere at ${new Date(at).toISOString()}`);
  io.out(`${state.revoked.size} revoked session(s) stored until they expire`);
  return 0;
}

/** With store: in the configuration, revocations are in the shared state (the database), not sessions_file. */
async function sharedSessions(cfg: Awaited<ReturnType<typeof config>>, revoke: string | undefined, io: Output): Promise<ExitCode> {
  const { revokeSharedUser, sharedSessionDecisions, storePasswordOf } = await import("../../http/gateway-entry.js");
  const password = await asFileOwner(cfg.owner, async () => storePasswordOf(cfg)); // the gateway user's file
  const now = systemClock.nowMs();
  try {
    if (revoke !== undefined) {
      const where = await revokeSharedUser(cfg, password, revoke, now);
      io.err(`${revoke} is logged out everywhere (in ${where}): sessions started before now end on every gateway using it within a few seconds; signing in again works`);
      return 0;
    }
    const state = await sharedSessionDecisions(cfg, password, now);
    for (const [user, at] of [...state.validAfter].sort((a, b) => a[0].localeCompare(b[0]))) io.out(`${user}\tlogged out everywhere at ${new Date(at).toISOString()}`);
    io.out(`${state.revoked} revoked session(s) stored until they expire; ${state.bans} ban(s) in force`);
    return 0;
  } catch (err) {
    if ((err as Error).name === "GatewayStateUnavailable") throw new OtpgateError(`${(err as Error).message}; nothing was changed, try again when the database answers`, 1);
    throw err;
  }
}
