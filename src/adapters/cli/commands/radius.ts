// otpgate radius: a resident verifier that pam_radius_auth.so asks over RADIUS (PAP) on loopback.
// The PAM module then shows "Verification code: " itself and no process starts per login, which
// makes it the fastest way to put otpgate into sshd or RStudio. Same decisions, state files and
// locking as otpgate pam; state files are used with the user's ids (the store switches for each file
// operation). Threat model: any local user (and, with --allow-remote, the network) can send packets
// but does not know the shared secret; see ../../radius/server.ts for the order of the checks.

import { createSocket } from "node:dgram";
import { fstatSync, openSync, readSync, closeSync, constants } from "node:fs";
import { ConfigError, OtpgateError, UsageError, type ExitCode } from "../../../core/errors.js";
import { systemClock } from "../../../platform/clock.js";
import { syslog } from "../../../platform/syslog.js";
import { UserCache } from "../../../platform/user-cache.js";
import { radiusFirewallRules, systemProbe } from "../../../services/radius-hardening.js";
import { storeFor } from "../../../services/resolve-account.js";
import { RadiusLog } from "../../radius/log.js";
import { radiusServer } from "../../radius/server.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";

const indent = (text: string) => text.replace(/^/gm, "  ");

export const help = `Usage: otpgate radius [--listen ADDR:PORT] [--secret-file FILE] [options]

A resident code checker for pam_radius_auth.so (package libpam-radius-auth): PAM asks
"Verification code: " and sends the code here over RADIUS on loopback; otpgate decides
with the user's state file exactly as otpgate pam does. Runs as root, in the foreground.

Options:
      --listen ADDR:PORT   where to listen (default 127.0.0.1:1812; loopback only unless
                           --allow-remote). 1812 is above 1023: any local user may bind it
                           while the server is not running; prefer a port below 1024
      --secret-file FILE   the RADIUS shared secret, root-owned, mode 0600
                           (default /etc/otpgate/radius.secret)
      --state PATTERN      state files (default ~/.google_authenticator)
      --nullok             users without a state file are accepted
      --noskewadj          do not learn clock skew from far-off codes
      --log-socket PATH    also send log lines to this syslog socket (rate-limited)
      --allow-remote       listen on a non-loopback address
  -h, --help               show this help

Logging: one JSON line per decision on stdout (under systemd: the journal, with its priority);
similar lines beyond 10 a second are counted and summarised ("N similar lines suppressed").
Requests that do not carry a 6-8 digit code under the shared secret (forged, or a client with
another secret) are dropped before any user lookup or state change.

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
  auth required pam_radius_auth.so conf=/etc/otpgate/pam_radius.conf [prompt=Verification code] force_prompt
`;

function readSecret(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new ConfigError(`cannot read the RADIUS secret ${path} (${(err as NodeJS.ErrnoException).code}); otpgate setup ssh --backend radius creates it`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o077) !== 0 || st.uid !== (process.geteuid?.() ?? 0)) {
      throw new ConfigError(`${path} must be a regular file owned by root with mode 0600 (it is 0${(st.mode & 0o777).toString(8)}, uid ${st.uid}): run chmod 600 ${path}`);
    }
    const buf = Buffer.alloc(256);
    const n = readSync(fd, buf, 0, 256, 0);
    const secret = Buffer.from(buf.toString("latin1", 0, n).trim(), "latin1");
    if (secret.length < 16) throw new ConfigError(`${path} holds a secret shorter than 16 characters; use a long random one`);
    return secret;
  } finally {
    closeSync(fd);
  }
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("radius", argv, {
    listen: { type: "string" },
    "secret-file": { type: "string" },
    state: { type: "string" },
    nullok: { type: "boolean" },
    noskewadj: { type: "boolean" },
    "log-socket": { type: "string" },
    "allow-remote": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  const m = /^([0-9.]+|\[[0-9a-f:]+\]):([0-9]{1,5})$/i.exec(values.listen ?? DEFAULT_LISTEN);
  if (!m) throw new UsageError(`--listen must be ADDR:PORT, not "${values.listen}"`);
  const host = m[1]!.replace(/^\[|\]$/g, "");
  const port = Number(m[2]);
  if (!(host === "::1" || host.startsWith("127.")) && !values["allow-remote"]) throw new UsageError(`${host} is not a loopback address; RADIUS PAP is only safe on loopback (pass --allow-remote to insist)`);
  const secret = readSecret(values["secret-file"] ?? "/etc/otpgate/radius.secret");
  const logSocket = values["log-socket"];
  // A log reader that went away (journald restarting) must not take the checker down with EPIPE.
  process.stdout.on("error", () => {});
  const log = new RadiusLog({
    nowMs: () => systemClock.nowMs(),
    out: (line) => process.stdout.write(line),
    syslog: logSocket ? (level, message) => syslog(level, message, { socket: logSocket }) : undefined,
    journal: process.env.JOURNAL_STREAM !== undefined,
  });
  const users = new UserCache({ nowMs: () => systemClock.nowMs() });
  // As large a receive queue as the kernel allows (net.core.rmem_max caps it): room for bursts
  // while a decision runs. Against a flood by a local user only the firewall rule in --help helps.
  const socket = createSocket({ type: host.includes(":") ? "udp6" : "udp4", recvBufferSize: RECV_BUFFER_BYTES });
  const server = radiusServer({
    secret,
    send: (packet, toPort, address) => socket.send(packet, toPort, address),
    lookup: (name) => users.lookup(name),
    storeFor: (account) => storeFor(account, account.groups, { secret: values.state }),
    clock: systemClock,
    log,
    nullok: values.nullok === true,
    noSkewAdjust: values.noskewadj === true,
  });
  socket.on("message", (msg, rinfo) => server.handle(msg, rinfo));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", (err: NodeJS.ErrnoException) => reject(bindError(err, host, port)));
    socket.bind(port, host, () => resolve());
  });
  socket.on("error", (err) => log.write("err", "socket", { event: "socket-error", detail: err.message }));
  const summary = setInterval(() => {
    const throttled = server.takeThrottled();
    if (throttled > 0) log.write("notice", "throttled", { event: "throttled", count: throttled, message: `${throttled} packets over a source's rate were dropped unread` });
    log.flush();
  }, 10_000);
  summary.unref();
  io.err(`otpgate radius: listening on ${host}:${port}`);
  const unprivileged = systemProbe.unprivilegedPortStart();
  if (unprivileged !== null && port >= unprivileged) {
    const message = `port ${port} is not privileged (net.ipv4.ip_unprivileged_port_start is ${unprivileged}): any local user can bind it while otpgate radius is not running and receive the codes pam_radius_auth sends; use a port below ${unprivileged} (--listen and pam_radius.conf)`;
    io.err(`otpgate radius: warning: ${message}`);
  }
  await new Promise<void>((resolve) => {
    const stop = () => socket.close(() => resolve());
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  clearInterval(summary);
  log.flush();
  return 0;
}

const DEFAULT_LISTEN = "127.0.0.1:1812";
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
