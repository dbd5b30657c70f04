// otpgate radius: a resident verifier that pam_radius_auth.so asks over RADIUS (PAP) on loopback.
// The PAM module then shows "Verification code: " itself and no process starts per login, which
// makes it the fastest way to put otpgate into sshd or RStudio. Same decisions, state files,
// locking and logging as otpgate pam.

import { createSocket, type RemoteInfo } from "node:dgram";
import { fstatSync, openSync, readSync, closeSync, constants } from "node:fs";
import { ConfigError, UsageError, type ExitCode } from "../../../core/errors.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { syslog } from "../../../platform/syslog.js";
import { authenticateWith } from "../../../services/authenticate.js";
import { userStore } from "../../../services/resolve-account.js";
import { ACCESS_ACCEPT, ACCESS_REJECT, buildResponse, parseAccessRequest, requestHasMessageAuthenticator, RadiusError } from "../../radius/packet.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";

export const help = `Usage: otpgate radius [--listen ADDR:PORT] [--secret-file FILE] [options]

A resident code checker for pam_radius_auth.so (package libpam-radius-auth): PAM asks
"Verification code: " and sends the code here over RADIUS on loopback; otpgate decides
with the user's state file exactly as otpgate pam does. Runs as root, in the foreground.

Options:
      --listen ADDR:PORT   where to listen (default 127.0.0.1:18120; loopback only unless
                           --allow-remote)
      --secret-file FILE   the RADIUS shared secret, root-owned, mode 0600
                           (default /etc/otpgate/radius.secret)
      --state PATTERN      state files (default ~/.google_authenticator)
      --nullok             users without a state file are accepted
      --noskewadj          do not learn clock skew from far-off codes
      --log-socket PATH    syslog socket (default /dev/log)
      --allow-remote       listen on a non-loopback address
  -h, --help               show this help

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
  const m = /^([0-9.]+|\[[0-9a-f:]+\]):([0-9]{1,5})$/i.exec(values.listen ?? "127.0.0.1:18120");
  if (!m) throw new UsageError(`--listen must be ADDR:PORT, not "${values.listen}"`);
  const host = m[1]!.replace(/^\[|\]$/g, "");
  const port = Number(m[2]);
  if (!(host === "::1" || host.startsWith("127.")) && !values["allow-remote"]) throw new UsageError(`${host} is not a loopback address; RADIUS PAP is only safe on loopback (pass --allow-remote to insist)`);
  const secret = readSecret(values["secret-file"] ?? "/etc/otpgate/radius.secret");
  const log = (level: "info" | "notice" | "err", message: string) => syslog(level, message, { socket: values["log-socket"] });

  // pam_radius re-sends a request it got no answer to: answer it again, never decide twice.
  const answered = new Map<string, { packet: Buffer; at: number }>();
  const inFlight = new Set<string>();
  const socket = createSocket(host.includes(":") ? "udp6" : "udp4");

  const handle = async (msg: Buffer, rinfo: RemoteInfo) => {
    let request;
    try {
      request = parseAccessRequest(msg, secret);
    } catch (err) {
      log("notice", `radius: dropped a packet from ${rinfo.address}:${rinfo.port}: ${err instanceof RadiusError ? err.message : "malformed"}`);
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}:${request.id}:${request.authenticator.toString("hex")}`;
    const now = Date.now();
    for (const [k, v] of answered) if (now - v.at > 30_000) answered.delete(k);
    const cached = answered.get(key);
    if (cached) return void socket.send(cached.packet, rinfo.port, rinfo.address);
    if (inFlight.has(key)) return;
    inFlight.add(key);
    const context = `user=${request.user} service=${request.nasIdentifier ?? "-"} rhost=${request.callingStationId ?? "-"} via=radius`;
    let accept = false;
    try {
      const found = userStore(request.user, { secret: values.state });
      if (!found) log("notice", `${context} result=rejected reason=unknown-user`);
      else {
        const { store } = found;
        const { outcome } = await authenticateWith(
          { store, clock: systemClock, macFactory: nodeMacFactory },
          request.password,
          { noSkewAdjust: values.noskewadj === true, noIncrementHotp: false, allowPrefix: false, recordSkewResetCode: true },
          {},
        );
        accept = outcome.kind === "accepted" || (outcome.kind === "not-enrolled" && values.nullok === true);
        const what = outcome.kind === "accepted" ? `result=accepted via=${outcome.via}` : outcome.kind === "rejected" ? `result=rejected reason=${outcome.reason}` : outcome.kind === "not-enrolled" ? (accept ? "result=accepted via=nullok" : "result=rejected reason=not-enrolled") : `result=error reason=invalid-state setting=${outcome.setting}`;
        log(accept ? "info" : "notice", `${context} ${what}`);
      }
    } catch (err) {
      log("err", `${context} result=error ${(err as Error).message}`);
    }
    const response = buildResponse(accept ? ACCESS_ACCEPT : ACCESS_REJECT, request, secret, requestHasMessageAuthenticator(msg));
    answered.set(key, { packet: response, at: Date.now() });
    inFlight.delete(key);
    socket.send(response, rinfo.port, rinfo.address);
  };

  socket.on("message", (msg, rinfo) => void handle(msg, rinfo));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, host, () => resolve());
  });
  io.err(`otpgate radius: listening on ${host}:${port}`);
  await new Promise<void>((resolve) => {
    const stop = () => socket.close(() => resolve());
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  return 0;
}
