// otpgate invite: a one-time link for self-service enrollment through the gateway.

import { existsSync } from "node:fs";
import { OtpgateError, UsageError, type ExitCode } from "../../../core/errors.js";
import { userNameProblem } from "../../../core/user-name.js";
import { systemClock } from "../../../platform/clock.js";
import { asUser } from "../../../platform/privileges.js";
import { lookupUserByName } from "../../../platform/users.js";
import { statePathOf } from "../../../stores/file-accounts.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { STORE_OPTIONS, fleetOptionsOf } from "../store-options.js";
import { asFileOwner } from "./gateway-file-owner.js";

export const options = {
  config: { type: "string", value: "FILE", help: "the gateway's configuration (public_url, invites_dir, state_files)" },
  expires: { type: "string", value: "TIME", help: "how long the link works: 30m, 24h, 7d (default 24h, at most 30d)" },
  replace: {
    type: "boolean",
    help: "USER is enrolled already (a lost phone): the link replaces the state file; USER's gateway sessions end at once (and again when the link is used). The old secret and emergency codes keep working until USER opens the link and confirms a code from the new app: whoever has the old phone can still sign in (SSH, RStudio, the gateway) in the meantime. Send the link at once; if the phone was stolen, also block the account until then: usermod --expiredate 1 USER (undo: usermod --expiredate '' USER)",
  },
  list: { type: "boolean", help: "pending invitations (user, expiry), no links" },
  ...STORE_OPTIONS,
  revoke: { type: "string", value: "USER", help: "withdraw USER's pending invitation" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "invite",
  {
    usage: ["USER --config GATEWAY.yaml [--expires 24h] [--replace]", "--list --config GATEWAY.yaml", "--revoke USER --config GATEWAY.yaml"],
    about: `
Prints a link (on stdout) that lets USER set up their authenticator app in the browser: the
gateway's page shows a new QR code, asks for a code from the app to confirm it, then writes
USER's state file like otpgate enroll does (or, when otpgate server runs with --store, USER's
account in the fleet database: then give invite the same --store, so it asks the database
whether USER is enrolled), and shows the emergency codes once. The link works
once and expires; a new invitation for USER replaces the earlier one. Run as root. With
decision_socket the gateway asks otpgate server, which reads invites_dir and writes the state
file as USER; the gateway itself never sees invites_dir.`,
  },
  options,
);

const MAX_TTL_MS = 30 * 86_400_000;

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("invite", argv, options);
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  if (!values.config) throw new UsageError("--config FILE is required: the gateway's configuration says where invitations live and the link's address");
  const modes = [values.list, values.revoke !== undefined, positionals.length > 0].filter(Boolean).length;
  if (modes !== 1 || positionals.length > 1) throw new UsageError("give one USER, or --list, or --revoke USER; see otpgate invite --help");
  if (process.geteuid?.() !== 0) throw new UsageError("run otpgate invite as root (invitations are kept in a root-only directory)");
  const { checkGatewayFiles, duration, loadGatewayConfig, resolveRunAs } = await import("../../http/gateway-entry.js");
  const { createInvite, listInvites, revokeInvites } = await import("../../../stores/invite-store.js");
  const config = loadGatewayConfig(values.config);
  // The gateway's files (sessions) belong to its user (user:) when it has one: written as that user.
  const gatewayUser = config.runAs !== null ? resolveRunAs(config.runAs, values.config) : null;
  checkGatewayFiles(config, values.config, gatewayUser?.uid ?? 0);
  // Invitations are root's (otpgate server reads them): every directory on the way is root's alone.
  const { stateLocationProblems } = await import("../../../platform/trusted-path.js");
  const invitesProblem = stateLocationProblems(config.invitesDir, { owners: [0] })[0];
  if (invitesProblem) throw new OtpgateError(`invites_dir ${config.invitesDir}: ${invitesProblem.path} is ${invitesProblem.reason} (invitations are written there as root); ${invitesProblem.fix}`, 2);
  const now = systemClock.nowMs();

  if (values.list) {
    const invites = listInvites(config.invitesDir, now);
    if (invites.length === 0) io.out("no pending invitations");
    for (const i of invites) io.out(`${i.user}\texpires ${new Date(i.expiresAt).toISOString()}${i.replace ? "\treplaces the state file" : ""}`);
    return 0;
  }
  if (values.revoke !== undefined) {
    const n = revokeInvites(config.invitesDir, values.revoke, now);
    if (n === 0) throw new OtpgateError(`${values.revoke} has no pending invitation`, 1);
    io.err(`withdrew ${values.revoke}'s invitation; the link no longer works`);
    return 0;
  }

  const user = positionals[0]!;
  const problem = userNameProblem(user);
  if (problem !== null) throw new UsageError(`the user name ${JSON.stringify(user)} cannot be used: it ${problem}`);
  const account = lookupUserByName(user);
  if (!account) throw new UsageError(`there is no account "${user}" (getent passwd ${user}); create it first`);
  const ttlMs = duration("--expires", values.expires, 86_400_000);
  if (ttlMs < 60_000 || ttlMs > MAX_TTL_MS) throw new UsageError("--expires must be between 1m and 30d");
  const enrolledAt = await enrollment(account, config.stateFiles, values);
  if (enrolledAt.enrolled && !values.replace)
    throw new UsageError(`${user} is already enrolled (${enrolledAt.where}); pass --replace to let the link replace it (after the user confirms, the old secret and emergency codes stop working)`);
  if (!enrolledAt.enrolled && values.replace) throw new UsageError(`${user} is not enrolled yet (${enrolledAt.where}); leave out --replace`);
  if (values.replace) {
    // A lost or stolen phone: the sessions signed in with it end now, not only once the new secret is set.
    if (config.store) {
      // Several gateways on one database (store:): their shared revocations (the password file is the gateway user's).
      const { revokeSharedUser, storePasswordOf } = await import("../../http/gateway-entry.js");
      const password = await asFileOwner(gatewayUser, async () => storePasswordOf(config));
      await revokeSharedUser(config, password, user, now);
      io.err(`${user}'s gateway sessions have ended (every gateway on ${config.store} ends them within a few seconds)`);
    } else {
      const { revokeUserSessions } = await import("../../../stores/gateway-revoke.js");
      const ended = await asFileOwner(gatewayUser, () => revokeUserSessions({ keysFile: config.keysFile, sessionsFile: config.sessionsFile }, user, now));
      if (ended === "revoked") io.err(`${user}'s gateway sessions have ended (a running gateway ends them within a second)`);
    }
  }
  if (values.replace) {
    io.err(
      `warning: ${user}'s old secret and emergency codes still work until the link is used (the new secret replaces them only then): whoever has the old phone can sign in again until then; send the link now, and if the phone was stolen block the account meanwhile (usermod --expiredate 1 ${user}; undo: usermod --expiredate '' ${user})`,
    );
  }
  const { token, invite } = createInvite(config.invitesDir, user, { nowMs: now, ttlMs, replace: values.replace === true });
  io.out(new URL(`${config.pagesPrefix}/enroll/${token}`, config.publicUrl).toString());
  io.err(`invitation for ${user}, valid until ${new Date(invite.expiresAt).toISOString()}, usable once; send the link over a channel only ${user} reads`);
  return 0;
}

/**
 * Whether USER is enrolled where the enrollment will land: with --store the fleet database (the
 * server on --store never writes a state file; H4's note), otherwise USER's state file.
 */
async function enrollment(
  account: { name: string; uid: number; gid: number; home: string },
  stateFiles: string,
  values: Parameters<typeof fleetOptionsOf>[0],
): Promise<{ enrolled: boolean; where: string }> {
  if (fleetOptionsOf(values) !== null) {
    // Through the fleet bundle (dist/otpgate-fleet.cjs): node-postgres stays out of the core bundle.
    const { fleetHasAccount } = await import("./fleet-main.js");
    const enrolled = await fleetHasAccount("invite", values, account.name);
    return { enrolled, where: enrolled ? "in the fleet database" : "not in the fleet database" };
  }
  const path = statePathOf(account, { secret: stateFiles });
  // Looked at as the user (their home may be NFS with root_squash, or a path they control).
  const enrolled = asUser({ uid: account.uid, gid: account.gid }, () => existsSync(path));
  return { enrolled, where: enrolled ? `${path} exists` : `no ${path}` };
}
