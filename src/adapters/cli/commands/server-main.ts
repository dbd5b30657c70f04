// otpgate server: the resident decision service. The RADIUS listener for pam_radius_auth (as
// `otpgate radius`, which stays as an alias) and a local HTTP API on a unix socket for the
// unprivileged gateway (decide, account, invitation enrollment). Runs as root: every state file is
// read and written with its owner's ids (the store switches for each synchronous file section).
// One JSON line per decision on stdout (the journal under systemd); no process per request.
// Bundled on its own (dist/otpgate-server.cjs, with zod): the login path never parses it, and every
// class the server checks with instanceof (the errors) comes from this one bundle.

import { createSocket, type Socket } from "node:dgram";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { ConfigError, OtpgateError, UsageError, type ExitCode } from "../../../core/errors.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { usePublicApisOnly } from "../../../platform/node-internals.js";
import { readPrivateFile } from "../../../platform/private-file.js";
import { syslog } from "../../../platform/syslog.js";
import { UserCache } from "../../../platform/user-cache.js";
import { radiusFirewallRules, systemProbe } from "../../../admin/radius-hardening.js";
import { accountStore, statePathOf } from "../../../stores/file-accounts.js";
import type { CachedAccount } from "../../../platform/user-cache.js";
import { RadiusLog } from "../../radius/log.js";
import { isLoopback, radiusServer } from "../../radius/server.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";
import { VERSION } from "../version.js";
import { localDecisionService, type DecisionAudit, type FileServiceAccounts, type FleetServiceAccounts } from "../../server/decisions.js";
import { deferredFleet } from "../../server/deferred-fleet.js";
import { auditRecordOf } from "../../server/fleet-audit.js";
import { FleetHealth, watchedFleet } from "../../server/fleet-health.js";
import { ClientsFileError, parseClients, prefixOf, type Prefix, type RadiusClients } from "../../radius/clients.js";
import { fleetOptionsOf, STORE_OPTIONS } from "../store-options.js";
import { describeFleetUrl } from "../../../stores/pg/url.js";
import type { FleetStore } from "../../../ports/fleet.js";
import { createDecisionApi } from "../../server/http-api.js";
import { checkInvitesDir } from "../../server/invites-dir.js";
import { loadServerKey } from "../../server/server-key.js";
import { DEFAULT_SOCKET_GROUP, groupId, listenOnSocket, prepareSocketPath } from "../../server/unix-socket.js";

const indent = (text: string) => text.replace(/^/gm, "  ");

export const DEFAULT_STATE_DIR = "/var/lib/otpgate";
const DEFAULT_SOCKET = "/run/otpgate/server.sock";
export const DEFAULT_AUDIT_RETENTION_DAYS = 90;
const MAX_AUDIT_RETENTION_DAYS = 100_000;

export const options = {
  listen: {
    type: "string",
    value: "ADDR:PORT",
    help: "RADIUS: where to listen (default 127.0.0.1:1812; loopback only unless --clients-file or --allow-remote). 1812 is above 1023: any local user may bind it while the server is not running; prefer a port below 1024",
  },
  "no-radius": { type: "boolean", help: "no RADIUS listener (the API only; no secret file needed)" },
  "secret-file": { type: "string", value: "FILE", help: "the RADIUS shared secret, root-owned, mode 0600 (default /etc/otpgate/radius.secret)" },
  "allow-remote": { type: "boolean", help: "listen on a non-loopback address with the one --secret-file secret for every client (older layout; prefer --clients-file)" },
  "clients-file": {
    type: "string",
    value: "FILE",
    help: "network RADIUS clients that cannot run otpgate (VPN, network gear): lines ADDRESS-or-CIDR SECRET, root-owned 0600; each must send Message-Authenticator; allows a non-loopback --listen; no line may cover a --local-clients address (refused); re-read on SIGHUP",
  },
  "local-clients": { type: "string", value: "LIST", help: "source addresses (comma-separated, exact or a.b.c.d/N) that may send requests without Message-Authenticator (default 127.0.0.0/8,::1)" },
  "allow-legacy-clients": { type: "boolean", help: "admit requests without Message-Authenticator from other clients too (old NAS; BlastRADIUS, CVE-2024-3596: avoid; warned about)" },
  socket: { type: "string", value: "PATH", help: `the API socket (otpgate server: default ${DEFAULT_SOCKET}; otpgate radius: none)` },
  "no-socket": { type: "boolean", help: "no API socket (RADIUS only)" },
  "socket-group": { type: "string", value: "NAME", help: "the group that may use the socket (default otpgate): the directory is made 0750 root:NAME, the socket 0660 root:NAME" },
  "state-dir": { type: "string", value: "DIR", help: `the server's key (server.key, made 0600 on first start) (default ${DEFAULT_STATE_DIR})` },
  "invites-dir": { type: "string", value: "DIR", help: `pending invitations (default ${DEFAULT_STATE_DIR}/invites, as the gateway's)` },
  state: { type: "string", value: "PATTERN", help: "state files (default ~/.google_authenticator)" },
  nullok: { type: "boolean", help: "users without a state file are accepted (not with --store)" },
  noskewadj: { type: "boolean", help: "do not learn clock skew from far-off codes" },
  "log-socket": { type: "string", value: "PATH", help: "also send log lines to this syslog socket (rate-limited)" },
  ...STORE_OPTIONS,
  migrate: { type: "boolean", help: "with --store: apply pending schema migrations at start (otherwise an older schema is refused)" },
  "audit-retention-days": {
    type: "string",
    value: "N",
    help: `with --store: delete audit records older than N days, hourly (the first pass a minute after start); 0 keeps every record (default ${DEFAULT_AUDIT_RETENTION_DAYS}, as otpgate db audit --prune)`,
  },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "server",
  {
    usage: ["[--listen ADDR:PORT] [--secret-file FILE] [--socket PATH] [options]", "--store postgres://USER@HOST:PORT/DB [--db-password-file FILE] [--db-key-file FILE] [--migrate] [options]"],
    about: `
The resident decision service, as root, in the foreground (the otpgate-server unit runs it):
- a RADIUS listener for pam_radius_auth.so (package libpam-radius-auth): PAM asks
  "Verification code: " and sends the code here over RADIUS; otpgate decides with the
  user's state file exactly as otpgate pam does;
- a local HTTP API on a unix socket for the gateway (decision_socket: in its config), so the
  gateway runs unprivileged and never opens a user's file.
Every state file is read and written with its owner's ids, never as root.
otpgate radius is the same command with the socket off unless --socket is given.

With --store postgres://... (many hosts, one database): the accounts, used codes, rate limits
and emergency codes are the fleet database's, shared by every host's otpgate server, and every
decision is written to its audit table (host, service, client address, result, reason; never a
code). The users need not exist in /etc/passwd (network clients' users). The password only as
a file (--db-password-file), the key that encrypts secrets from --db-key-file.
The database down or too slow: CLOSED by default - every login is refused (RADIUS
Access-Reject, API outcome "error", reason "unavailable"), one log line when the outage starts
and one when the database answers again; the server stays up and reconnects by itself, no
restart needed. There is no mode that lets logins through without the database.
Audit records older than --audit-retention-days (default 90; 0 keeps them all) are deleted by
every server once an hour; otpgate db audit --prune [--retention-days N] does it at once.

Replays: each server remembers the request authenticators it decided for 24 hours, in memory.
A captured request is therefore refused again by the server that decided it, but a second
server of the same database (or the same server after a restart) decides it once more: the
decision is the same (a used code stays used under DISALLOW_REUSE), but it counts toward the
user's RATE_LIMIT and adds an audit row. It takes someone who can capture and resend the
client's packets: on the network path between a --clients-file client and the servers, or
local root with RADIUS on loopback.`,
    after: `
Logging: one JSON line per decision or API request on stdout (under systemd: the journal, with
its priority); similar lines beyond 10 a second are counted and summarised ("N similar lines
suppressed"). Never a code, secret or invitation token. Requests that do not carry a 6-8 digit
code under the shared secret (forged, or a client with another secret) are dropped before any
user lookup or state change.

RADIUS answers always carry a Message-Authenticator (RFC 3579). Requests from clients that are
not local must carry one too (pam_radius_auth 2.0.0 on loopback sends none and keeps working).

Network clients (--clients-file FILE, root-owned, mode 0600):
  # ADDRESS-or-CIDR  SECRET (16-128 characters)
  192.0.2.10        a-long-random-secret
  2001:db8::/64     another-long-secret
Each request's source address picks its line (the most specific prefix wins) and is answered
with that secret; a source in no line is dropped unread. A line that covers a local client's
address (--local-clients, by default 127.0.0.0/8 and ::1; e.g. 0.0.0.0/0 or 127.0.0.0/24) is
refused at start: it would take pam_radius_auth's requests on this host away from
--secret-file. The file is read again on SIGHUP (systemctl reload otpgate-server): a file that
is refused then is logged and the previous clients stay; other changes need a restart. These clients MUST send
Message-Authenticator (no legacy exception: --allow-legacy-clients is refused with the file).
--secret-file then serves local clients only (pam_radius_auth on loopback, --local-clients),
and is read only when given. A non-loopback --listen needs --clients-file (or --allow-remote:
the older layout, one secret for every client).

Floods: the server drops forged packets in microseconds, but a local user who floods the port
from many sockets fills the kernel's receive queue before otpgate reads it, and logins time
out. pam_radius_auth runs as root (inside sshd, RStudio's PAM helper), so let only root send to
the port on loopback; load this nftables table at boot (e.g. in /etc/nftables.conf; otpgate
doctor checks for it):
${indent(radiusFirewallRules(1812))}
(with --listen on another port, use that port; a client that runs PAM as another user, e.g. a
screen locker, is then refused as well). Keep the port below net.ipv4.ip_unprivileged_port_start
(1024 by default), or any user can take it before the server starts.

PAM line (otpgate setup ssh --backend radius writes it):
  auth required pam_radius_auth.so conf=/etc/otpgate/pam_radius.conf [prompt=Verification code] force_prompt`,
  },
  options,
);

/** The RADIUS shared secret: root's own file, mode 0600, at most 256 bytes, never through a symlink. */
function readSecret(path: string): Buffer {
  const file = readPrivateFile(path, {
    what: "the RADIUS shared secret",
    maxBytes: 256,
    ownerUid: 0,
    ownerName: "root",
    allowedMode: 0o600,
    follow: false,
    error: ConfigError,
    explain: (problem, f) => {
      if (problem === "mode" || problem === "owner") {
        return `${path} must be a regular file owned by root with mode 0600 (it is 0${((f.mode ?? 0) & 0o777).toString(8)}, uid ${f.uid}): run chown root:root ${path} && chmod 600 ${path}`;
      }
      if (problem === "too-large") return `${path} is ${f.size} bytes; a RADIUS secret is at most 256 bytes: put one line of 16 to 128 random characters in it`;
      return undefined;
    },
  });
  if (file === null) throw new ConfigError(`cannot read the RADIUS secret ${path} (ENOENT); otpgate setup ssh --backend radius creates it`);
  const secret = Buffer.from(file.bytes.toString("latin1").trim(), "latin1");
  file.bytes.fill(0);
  if (secret.length < 16) throw new ConfigError(`${path} holds a secret shorter than 16 characters; use a long random one`);
  return secret;
}

/** The local clients' addresses as prefixes, to refuse a clients-file line that covers one. */
export function localClientPrefixes(spec: string | undefined): Prefix[] {
  const items =
    spec === undefined
      ? ["127.0.0.0/8", "::1"]
      : spec
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
  return items.map((item) => {
    const prefix = prefixOf(item);
    if (prefix === null) throw new UsageError(`--local-clients: "${item}" is not an address or an IPv4 prefix a.b.c.d/N`);
    return prefix;
  });
}

/** --audit-retention-days: 0 (keep everything) to 100000 days, default 90; only with --store. */
export function auditRetentionOf(value: string | undefined, withStore: boolean): number {
  if (value === undefined) return DEFAULT_AUDIT_RETENTION_DAYS;
  if (!withStore) throw new UsageError("--audit-retention-days goes with --store postgres://... (the audit table is the fleet database's)");
  if (!/^[0-9]{1,6}$/.test(value) || Number(value) > MAX_AUDIT_RETENTION_DAYS)
    throw new UsageError(`--audit-retention-days must be a number of days from 0 (keep every record) to ${MAX_AUDIT_RETENTION_DAYS}, not ${JSON.stringify(value)}`);
  return Number(value);
}

/** A predicate for --local-clients: exact addresses and IPv4 prefixes (a.b.c.d/N); "::1" style IPv6 exact. */
export function localClients(spec: string): (address: string) => boolean {
  const tests = spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item): ((a: string) => boolean) => {
      const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(item);
      if (m && isIP(m[1]!) === 4 && Number(m[2]) <= 32) {
        const bits = Number(m[2]);
        const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
        const net = (v4(m[1]!)! & mask) >>> 0;
        return (a) => {
          const n = v4(a.startsWith("::ffff:") ? a.slice(7) : a);
          return n !== null && (n & mask) >>> 0 === net;
        };
      }
      if (isIP(item) === 0) throw new UsageError(`--local-clients: "${item}" is not an address or an IPv4 prefix a.b.c.d/N`);
      const want = item.toLowerCase();
      return (a) => a.toLowerCase() === want || a.toLowerCase() === `::ffff:${want}`;
    });
  return (address) => tests.some((t) => t(address));
}

function v4(address: string): number | null {
  if (isIP(address) !== 4) return null;
  return address.split(".").reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

export async function run(argv: string[], io: Output, as: "server" | "radius" = "server"): Promise<ExitCode> {
  const { values } = parse(as, argv, options);
  if (values.help) {
    io.out((as === "radius" ? help.replace("Usage: otpgate server", "Usage: otpgate radius") : help).trimEnd());
    return 0;
  }
  // A resident process: start-up cost does not matter, a private Node binding changing under it would.
  usePublicApisOnly();
  const name = `otpgate ${as}`;
  const socketPath = values["no-socket"] ? undefined : (values.socket ?? (as === "server" ? DEFAULT_SOCKET : undefined));
  const radius = !values["no-radius"];
  if (!radius && socketPath === undefined) throw new UsageError(`nothing to serve: --no-radius and no socket; see ${name} --help`);
  const isLocal = values["local-clients"] !== undefined ? localClients(values["local-clients"]) : isLoopback;
  const localPrefixes = localClientPrefixes(values["local-clients"]);

  // A log reader that went away (journald restarting) must not take the server down with EPIPE.
  process.stdout.on("error", () => {});
  const logSocket = values["log-socket"];
  const log = new RadiusLog({
    nowMs: () => systemClock.nowMs(),
    out: (line) => process.stdout.write(line),
    syslog: logSocket ? (level, message) => syslog(level, message, { socket: logSocket }) : undefined,
    journal: process.env.JOURNAL_STREAM !== undefined,
  });
  const users = new UserCache({ nowMs: () => systemClock.nowMs() });
  // Every state file through the store factory, opened as its owner (uid, gid, groups of the lookup).
  const storeOf = (account: CachedAccount) => accountStore(account, statePathOf(account, { secret: values.state }));
  const closers: (() => Promise<void>)[] = [];
  let fleet: FleetStore | null = null;
  let radiusServerState: ReturnType<typeof radiusServer> | null = null;
  let reloadClients: (() => void) | null = null;
  // Everything opened so far, closed: at SIGTERM, and when start-up fails half-way (a bound UDP
  // socket or the fleet pool would keep a failed server running, half up, or for the pool's idle time).
  // SIGHUP (systemctl reload): the clients file again; without one, nothing to reload (said so).
  // Handled from the start, so that a reload during start-up does not stop the server.
  const hangup = () => (reloadClients ?? (() => log.write("notice", "reload", { event: "reload", message: "nothing to reload (no --clients-file); other options need a restart" })))();
  process.on("SIGHUP", hangup);
  const closeAll = async () => {
    process.off("SIGHUP", hangup);
    await Promise.all(closers.map((c) => c().catch(() => {})));
    // After the listeners: the audit queue is flushed with the last decisions in it.
    await fleet?.close().catch((err: unknown) => io.err(`${name}: closing the fleet database: ${(err as Error).message}`));
    log.flush();
  };
  try {
    // The fleet store (--store): opened before anything listens; pg is loaded only here.
    const fleetOptions = fleetOptionsOf(values, {
      migrate: values.migrate === true,
      auditRetentionDays: auditRetentionOf(values["audit-retention-days"], values.store !== undefined),
      // The server is resident: its first retention pass soon after start, then hourly.
      firstAuditPruneAfterMs: 5_000,
      host: hostname(),
      // The store's own warnings (a dropped connection, audit records dropped) into the server's log.
      log: (level, message) => log.write(level, `fleet:${level}`, { event: "fleet", message }),
    });
    if (fleetOptions === null && values.migrate) throw new UsageError("--migrate goes with --store postgres://...");
    let audit: DecisionAudit | undefined;
    if (fleetOptions !== null) {
      if (values.nullok) throw new UsageError("--nullok is not available with --store: every name is an account there, so any name would be let in; enroll the users instead");
      if (values.state !== undefined) throw new UsageError("--state names state files; with --store the accounts are the database's");
      const health = new FleetHealth(
        () => systemClock.nowMs(),
        (level, kind, fields) => log.write(level, kind, fields),
      );
      const { openFleetStore } = await import("../../../stores/pg/open.js");
      const opened = await deferredFleet(
        () => openFleetStore(fleetOptions),
        () => systemClock.nowMs(),
        (err) => health.failed(err),
      );
      const store = watchedFleet(opened, health);
      fleet = store;
      const host = fleetOptions.host ?? hostname();
      audit = (entry) => store.audit(auditRecordOf(entry, systemClock.nowMs(), host));
      io.err(`${name}: accounts from the fleet database (${redactedUrl(fleetOptions.url)}); closed when it cannot be reached`);
    }
    const fleetLookup = async (n: string) => ({ name: n });
    const fleetStoreOf = (a: { readonly name: string }, code: string) => fleet!.account(a.name, code);

    if (radius) {
      const m = /^([0-9.]+|\[[0-9a-f:]+\]):([0-9]{1,5})$/i.exec(values.listen ?? DEFAULT_LISTEN);
      if (!m) throw new UsageError(`--listen must be ADDR:PORT, not "${values.listen}"`);
      const host = m[1]!.replace(/^\[|\]$/g, "");
      const port = Number(m[2]);
      const clientsFile = values["clients-file"];
      if (clientsFile !== undefined && values["allow-legacy-clients"])
        throw new UsageError("--allow-legacy-clients does not go with --clients-file: the clients file's clients must send Message-Authenticator");
      if (!(host === "::1" || host.startsWith("127.")) && !values["allow-remote"] && clientsFile === undefined)
        throw new UsageError(
          `${host} is not a loopback address: list the RADIUS clients that may ask in --clients-file FILE (RADIUS PAP is only safe on loopback otherwise; --allow-remote keeps the older one-secret layout)`,
        );
      let clients = clientsFile === undefined ? undefined : readClients(clientsFile, localPrefixes);
      if (clientsFile !== undefined) {
        // SIGHUP: the clients file again; a file refused now is logged and the previous clients stay.
        reloadClients = () => {
          try {
            clients = readClients(clientsFile, localPrefixes);
            log.write("notice", "clients-reloaded", { event: "reload", message: `${clients.size} network client line(s) from ${clientsFile}` });
          } catch (err) {
            log.write("err", "clients-reload", { event: "reload-failed", message: `${(err as Error).message}; the previous clients file stays in use` });
          }
        };
      }
      // With a clients file the one secret serves local clients only, and is read only when given.
      const secret = clientsFile !== undefined && values["secret-file"] === undefined ? null : readSecret(values["secret-file"] ?? "/etc/otpgate/radius.secret");
      // As large a receive queue as the kernel allows (net.core.rmem_max caps it): room for bursts
      // while a decision runs. Against a flood by a local user only the firewall rule in --help helps.
      const socket: Socket = createSocket({ type: host.includes(":") ? "udp6" : "udp4", recvBufferSize: RECV_BUFFER_BYTES });
      const accounts =
        fleet !== null
          ? { lookup: fleetLookup, storeFor: fleetStoreOf }
          : { lookup: (n: string) => users.lookup(n) as Promise<{ readonly name: string } | null | "busy">, storeFor: (a: { readonly name: string }) => storeOf(a as CachedAccount) };
      const server = radiusServer({
        secret,
        clients: clients === undefined ? undefined : { clientOf: (address: string) => clients!.clientOf(address) },
        send: (packet, toPort, address) => socket.send(packet, toPort, address),
        ...accounts,
        audit,
        clock: systemClock,
        log,
        nullok: values.nullok === true,
        noSkewAdjust: values.noskewadj === true,
        isLocal,
        allowLegacyClients: values["allow-legacy-clients"] === true,
      });
      radiusServerState = server;
      socket.on("message", (msg, rinfo) => server.handle(msg, rinfo));
      closers.push(
        () =>
          new Promise<void>((r) => {
            try {
              socket.close(() => r());
            } catch {
              r(); // never bound, or closed already
            }
          }),
      );
      await new Promise<void>((resolve, reject) => {
        socket.once("error", (err: NodeJS.ErrnoException) => reject(bindError(err, host, port)));
        socket.bind(port, host, () => resolve());
      });
      socket.on("error", (err) => log.write("err", "socket", { event: "socket-error", detail: err.message }));
      if (values["allow-legacy-clients"]) {
        const message = "--allow-legacy-clients: RADIUS clients that are not local may send requests without Message-Authenticator (BlastRADIUS, CVE-2024-3596): upgrade them and drop this option";
        io.err(`${name}: warning: ${message}`);
        log.write("warning", "legacy-clients", { event: "start", warning: "allow-legacy-clients", message });
      }
      io.err(`${name}: listening on ${host}:${port}${clients ? ` (${clients.size} network client line(s) from ${clientsFile})` : ""}`);
      const unprivileged = systemProbe.unprivilegedPortStart();
      if (unprivileged !== null && port >= unprivileged) {
        const message = `port ${port} is not privileged (net.ipv4.ip_unprivileged_port_start is ${unprivileged}): any local user can bind it while ${name} is not running and receive the codes pam_radius_auth sends; use a port below ${unprivileged} (--listen and pam_radius.conf)`;
        io.err(`${name}: warning: ${message}`);
      }
    }

    const api = { localDecisionService, loadServerKey, createDecisionApi, prepareSocketPath, listenOnSocket };
    const groupName = values["socket-group"] ?? DEFAULT_SOCKET_GROUP;
    const gid = socketPath === undefined ? null : groupId(groupName);
    // The default socket on a RADIUS-only machine (no gateway, so no group yet): RADIUS alone, said once.
    const quietlyOff = socketPath !== undefined && gid === null && values.socket === undefined && values["socket-group"] === undefined && radius;
    if (quietlyOff) io.err(`${name}: no group "${groupName}": the API socket ${socketPath} is off (RADIUS only). For the gateway: groupadd --system ${groupName}, then restart`);
    if (socketPath !== undefined && !quietlyOff) {
      if (gid === null) throw new ConfigError(`there is no group "${groupName}" for the socket: create it (groupadd --system ${groupName}) and add the gateway's user to it, or pass --socket-group`);
      const stateDir = values["state-dir"] ?? DEFAULT_STATE_DIR;
      const invitesDir = values["invites-dir"] ?? join(stateDir, "invites");
      // Invitations are read as root: refused before serving when the layout lets another user plant one.
      checkInvitesDir(invitesDir);
      const accounts: FleetServiceAccounts | FileServiceAccounts<CachedAccount> = fleet !== null ? { fleet } : { lookup: (n: string) => users.lookup(n), storeFor: storeOf };
      const service = api.localDecisionService<CachedAccount>({
        ...accounts,
        audit,
        clock: systemClock,
        macFactory: nodeMacFactory,
        factors: { requirePublickey: false, nullok: values.nullok === true, noSkewAdjust: values.noskewadj === true, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false },
        serverKey: api.loadServerKey(join(stateDir, "server.key")),
        invitesDir,
        log: (level, kind, fields) => log.write(level, kind, fields),
      });
      const http = api.createDecisionApi({ service, version: VERSION, log: (level, kind, fields) => log.write(level, kind, fields) });
      await api.prepareSocketPath(socketPath, gid);
      try {
        await api.listenOnSocket(http, socketPath, gid);
      } catch (err) {
        throw new OtpgateError(`cannot listen on ${socketPath}: ${(err as Error).message}`, 1);
      }
      closers.push(
        () =>
          new Promise<void>((r) => {
            http.close(() => r());
            http.closeAllConnections();
          }),
      );
      io.err(`${name}: API listening on ${socketPath} (group ${groupName})`);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  const summary = setInterval(() => {
    const throttled = radiusServerState?.takeThrottled() ?? 0;
    if (throttled > 0) log.write("notice", "throttled", { event: "throttled", count: throttled, message: `${throttled} packets over a source's rate were dropped unread` });
    log.flush();
  }, 10_000);
  summary.unref();
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await closeAll();
  clearInterval(summary);
  return 0;
}

const DEFAULT_LISTEN = "127.0.0.1:1812";

/** The URL for a message: host, port and database only (stores/pg/url.ts). */
const redactedUrl = describeFleetUrl;

/** The clients file: root's own, mode 0600, never through a symlink (it holds shared secrets). */
function readClients(path: string, local: readonly Prefix[]): RadiusClients {
  const file = readPrivateFile(path, {
    what: "the RADIUS clients file",
    maxBytes: 1 << 20,
    ownerUid: 0,
    ownerName: "root",
    allowedMode: 0o600,
    follow: false,
    error: ConfigError,
    explain: (problem, f) =>
      problem === "mode" || problem === "owner"
        ? `${path} must be a regular file owned by root with mode 0600 (it is 0${((f.mode ?? 0) & 0o777).toString(8)}, uid ${f.uid}): run chown root:root ${path} && chmod 600 ${path}`
        : undefined,
  });
  if (file === null) throw new ConfigError(`cannot read the RADIUS clients file ${path} (ENOENT): create it (root, mode 0600) with lines ADDRESS-or-CIDR SECRET`);
  try {
    const clients = parseClients(file.bytes.toString("utf8"));
    if (clients.size === 0) throw new ClientsFileError("no client line: add lines ADDRESS-or-CIDR SECRET");
    // A line over a local client's address would take pam_radius_auth's requests (unsigned, the
    // --secret-file secret) to that line's secret and Message-Authenticator rule: every local login refused.
    const covering = [...new Set(local.flatMap((p) => clients.overlapping(p)))];
    if (covering.length > 0)
      throw new ClientsFileError(
        `${covering.join(", ")} covers a local client's address (--local-clients, default 127.0.0.0/8 and ::1: pam_radius_auth on this host, which uses --secret-file): list the network clients' own addresses or prefixes instead, or narrow --local-clients`,
      );
    return clients;
  } catch (err) {
    if (err instanceof ClientsFileError) throw new ConfigError(`${path}: ${err.message}`);
    throw err;
  } finally {
    file.bytes.fill(0);
  }
}
const RECV_BUFFER_BYTES = 32 * 1024 * 1024;

/** What to do when the port cannot be had: who holds it, or that it needs root. */
export function bindError(err: NodeJS.ErrnoException, host: string, port: number): OtpgateError {
  if (err.code === "EADDRINUSE") {
    return new OtpgateError(
      `${host}:${port} is already in use: another program holds it (another otpgate radius, or a local user who took the port first). See who with: ss -ulpn 'sport = :${port}'. Stop it, or use a port below 1024 (only root can take those) with --listen and the same port in pam_radius.conf`,
      1,
    );
  }
  if (err.code === "EACCES") {
    return new OtpgateError(`${host}:${port} is a privileged port: run otpgate radius as root (the otpgate-radius service does), or pass --listen with another address`, 1);
  }
  if (err.code === "EADDRNOTAVAIL") return new OtpgateError(`${host} is not an address of this machine (--listen)`, 1);
  return new OtpgateError(`cannot listen on ${host}:${port}: ${err.message}`, 1);
}
