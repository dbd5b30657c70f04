// otpgate gateway: the web login gateway in the foreground (see otpgate gateway --help).

import type { ExitCode } from "../../../core/errors.js";
import { ConfigError, OtpgateError, UsageError } from "../../../core/errors.js";
import { asUser } from "../../../platform/privileges.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import type { Output } from "../output.js";

export const options = {
  config: { type: "string", value: "FILE", help: "the configuration" },
  "check-config": { type: "boolean", help: "validate the configuration and exit (0 valid, 2 not)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "gateway",
  {
    usage: ["--config FILE [--check-config]", "keys --config FILE [--rotate] [--retire-old [--force]]", "sessions --config FILE --revoke USER | --list"],
    about: `
A login page with one-time codes in front of web apps (RStudio Server, Jupyter, ...): a
reverse proxy to "upstream", and a forward-auth endpoint PREFIX/auth for nginx auth_request
(200 or 401, with Remote-User) and Traefik/Caddy (forward_auth: redirect). Codes are checked
with the users' state files, like otpgate verify. Runs in the foreground; one JSON line per
login decision on stdout.

Configuration (YAML). Every level is checked: unknown keys, wrong types and values out of range
are errors, all reported at once with their path (--check-config). Defaults shown:
  listen: 127.0.0.1:9091               # where the gateway listens (IP:PORT, [IPv6]:PORT)
  public_url: https://app.example.com  # required: how users reach it (https: cookies are Secure)
  upstream: http://127.0.0.1:8787      # optional: the app to proxy to (scheme, host and port only)
  pages_prefix: /_otpgate              # login page, logout, auth, metrics live under it
  allowed_hosts: [app.example.com]     # hosts a login may return to; X-Forwarded-Host is one of
                                       # them (the request's Host if listed, else public_url's)
  tls: {cert: FILE, key: FILE}         # optional: serve HTTPS itself
  state_files: ~/.google_authenticator # path pattern of the users' state files
  keys_file: /var/lib/otpgate/gateway.keys   # created 0600 on first start
  sessions_file: /var/lib/otpgate/gateway.sessions   # revocations; default: next to keys_file
  session: {idle: 30m, absolute: 12h, recheck: 1m}   # recheck: how often a session is checked
                                       # against the user's state file (a new secret ends it)
  regulation: {max_retries: 5, find_time: 2m, ban_time: 5m,     # per (user, address) and address;
               user_delay_max: 10s, max_entries: 100000}      # a user is slowed, never locked out
  trusted_proxies: []                  # proxies in front whose X-Forwarded-For is believed:
                                       # addresses or CIDRs, e.g. [127.0.0.1, 10.0.0.0/8]; none:
                                       # the TCP peer is the client
  limits: {first_byte_timeout: 10s, head_timeout: 30s, body_timeout: 30s,
           keep_alive_timeout: 5m, connections_per_address: 64, max_headers: 100}
  metrics_listen: 127.0.0.1:9092       # optional: a separate listener for metrics
  user_lookup_timeout: 5s              # an account lookup (NSS, LDAP) may take this long
  forward_auth: status                 # status (nginx) or redirect (Traefik, Caddy)
  cookie_name: otpgate_session
  password_file: /etc/otpgate/passwords   # optional: a password too (otpgate passwd USER)
  invites_dir: /var/lib/otpgate/invites   # invitations from otpgate invite USER
  issuer: example.com                  # name shown in the app for invited users (default: host name)
  decision_socket: /run/otpgate/server.sock  # ask otpgate server (logins, session checks,
                                       # enrollment): the gateway reads no home directory
  user: otpgate-gw                     # name or uid: started as root, the gateway binds its
                                       # port(s), then becomes this user for good (needs
                                       # decision_socket); as root without it, it refuses to run
  store: postgres://gw@db:5432/otpgate # optional: several instances share revocations and bans
                                       # in the fleet database (instead of sessions_file); polled
                                       # every second; unreachable for 10 s: sessions refused
  store_password_file: /etc/otpgate/gw-db.password   # its password (0600, the gateway user's)
Durations are a whole number and ms, s, m, h or d: 250ms, 30s, 5m, 12h, 7d.
keys_file, sessions_file, password_file and invites_dir: every directory on the way must belong
to root (or the gateway's user) and be writable by nobody else, checked at the start and by
--check-config (invites_dir: root's, read by otpgate server when decision_socket is set); each
must be a file of its own. Deleting sessions_file does not bring logouts
back: the gateway keeps what it knew, and refuses to start without it (restore a backup).`,
    after: `
Subcommands (run next to a running gateway; it notices within a second):
  otpgate gateway keys                    list the keys (keys_file)
  otpgate gateway keys --rotate           add a new key
  otpgate gateway keys --retire-old       drop the keys older than the newest
  otpgate gateway sessions --revoke USER  log USER out everywhere
  otpgate gateway sessions --list         who was logged out everywhere
Their options: otpgate gateway keys --help, otpgate gateway sessions --help`,
  },
  options,
);

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  // Subcommands (key rotation, log out everywhere): gateway-admin.ts.
  if (argv[0] === "keys" || argv[0] === "sessions") {
    const admin = await import("./gateway-admin.js");
    return argv[0] === "keys" ? admin.runKeys(argv.slice(1), io) : admin.runSessions(argv.slice(1), io);
  }
  const { values } = parse("gateway", argv, options);
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  if (!values.config) throw new UsageError("--config FILE is required; see otpgate gateway --help");
  const {
    checkGatewayFiles,
    createGateway,
    dropPrivileges,
    gatewayConfigWarnings,
    loadGatewayConfig,
    openSharedState,
    preflight,
    resolveRunAs,
    rootWithoutUserMessage,
    sharedStateNote,
    storePasswordOf,
  } = await import("../../http/gateway-entry.js");
  let config: Awaited<ReturnType<typeof loadGatewayConfig>>;
  let notes: string[] = [];
  const asRoot = (process.geteuid?.() ?? -1) === 0;
  let runAs: ReturnType<typeof resolveRunAs> | null = null;
  try {
    config = loadGatewayConfig(values.config);
    runAs = asRoot && config.runAs !== null ? resolveRunAs(config.runAs, values.config) : null;
    // Before any file is read or created: the directories on the way are root's (or the gateway user's) only.
    checkGatewayFiles(config, values.config, runAs?.uid ?? process.geteuid?.() ?? 0);
    if (asRoot && config.runAs === null && !values["check-config"]) throw new ConfigError(rootWithoutUserMessage(values.config));
    // Started as root with user: the gateway's files are read only after it became that user (below).
    // --check-config reads them as that user too (they are its files, and it must be able to read them).
    if (!runAs) notes = preflight(config);
    else if (values["check-config"]) notes = [...preflight(config, { files: false }), ...asUser(runAs, () => preflight(config, { tls: false }))];
  } catch (err) {
    const problems = configProblems(err);
    if (problems && values["check-config"]) {
      io.err(`${values.config}: not valid, ${problems.length} problem${problems.length === 1 ? "" : "s"}:`);
      for (const p of problems) io.err(`  ${p.path ? `${p.path}: ` : ""}${p.message}`);
      return 2;
    }
    throw asOwnError(err);
  }
  for (const w of gatewayConfigWarnings(config)) io.err(`otpgate gateway: warning: ${w}`);
  if (asRoot && config.runAs === null) io.err(`otpgate gateway: warning: ${rootWithoutUserMessage(values.config)}`);
  if (values["check-config"]) {
    // The shared state (store:): the password file is the gateway user's; the database is asked once.
    try {
      const password = runAs ? asUser(runAs, () => storePasswordOf(config)) : storePasswordOf(config);
      const shared = await sharedStateNote(config, password);
      if (shared?.ok) notes.push(shared.note);
      else if (shared?.misconfigured) {
        io.err(`${values.config}: not valid, 1 problem:`);
        io.err(`  store: ${shared.note}`);
        return 2;
      } else if (shared) io.err(`otpgate gateway: warning: store: ${shared.note}`);
    } catch (err) {
      const problems = configProblems(err);
      io.err(`${values.config}: not valid, 1 problem:`);
      io.err(`  store: ${problems ? problems.map((p) => p.message).join("; ") : (err as Error).message}`);
      return 2;
    }
    const proxies = config.trustedProxies.ranges.map((r) => r.text);
    io.out(
      `${values.config}: valid (listen ${hostPort(config.listen)}, ${config.upstream ? `proxy to ${config.upstream.origin}` : "forward-auth only"}` +
        `; X-Forwarded-For ${proxies.length ? `believed from ${proxies.join(", ")}` : "ignored (no trusted_proxies)"}` +
        `${config.metricsListen ? `; metrics on ${hostPort(config.metricsListen)}` : ""}${notes.map((n) => `; ${n}`).join("")})`,
    );
    return 0;
  }
  // Nothing of the gateway's own files is read before start(): with user:, the ports are bound as
  // root, then the process becomes that user for good, and only then reads keys, sessions and the
  // password file and answers requests.
  const log = (event: Record<string, unknown>) => io.out(JSON.stringify({ time: new Date().toISOString(), ...event }));
  const gateway = createGateway(config, log, { deferStart: true });
  await new Promise<void>((resolve, reject) => {
    gateway.server.once("error", (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "EADDRINUSE"
          ? "the address is in use by another process"
          : err.code === "EACCES"
            ? "permission denied (ports below 1024 need root)"
            : err.code === "EADDRNOTAVAIL"
              ? "no such local address"
              : err.message;
      reject(new ConfigError(`cannot listen on ${config.listen.host}:${config.listen.port}: ${why}; change listen in ${values.config}`));
    });
    gateway.server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  const metrics = gateway.metricsServer;
  if (metrics && !metrics.listening) await new Promise<void>((resolve) => metrics.once("listening", resolve).once("error", () => resolve()));
  if (runAs) {
    try {
      dropPrivileges(runAs);
      preflight(config, { tls: false }); // the TLS files were read as root when the server was made
      gateway.start(await openSharedState(config, log));
    } catch (err) {
      await gateway.close().catch(() => undefined);
      throw asOwnError(err);
    }
    io.err(`otpgate gateway: running as ${runAs.name} (uid ${runAs.uid}, gid ${runAs.gid})`);
  } else {
    try {
      gateway.start(await openSharedState(config, log));
    } catch (err) {
      await gateway.close().catch(() => undefined);
      throw asOwnError(err);
    }
  }
  io.err(`otpgate gateway: listening on ${config.listen.host}:${config.listen.port}`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      setTimeout(() => process.exit(0), 3000).unref();
      void gateway.close().then(resolve);
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  return 0;
}

const hostPort = (a: { host: string; port: number }) => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

// The gateway is its own bundle (dist/otpgate-gateway.cjs) with its own copy of the error classes,
// so `instanceof` cannot recognise its errors here: they are recognised by shape instead.

/** The problems of a GatewayConfigError from the gateway bundle, or null for any other error. */
function configProblems(err: unknown): readonly { path: string; message: string }[] | null {
  if (!(err instanceof Error) || !Array.isArray((err as { problems?: unknown }).problems)) return null;
  const problems = (err as unknown as { problems: unknown[] }).problems;
  return problems.every((p) => typeof p === "object" && p !== null && typeof (p as { path?: unknown }).path === "string" && typeof (p as { message?: unknown }).message === "string")
    ? (problems as { path: string; message: string }[])
    : null;
}

/** An OtpgateError from the gateway bundle as this bundle's ConfigError (so it is reported, not an "internal error"). */
function asOwnError(err: unknown): unknown {
  if (err instanceof OtpgateError || !(err instanceof Error)) return err;
  const exitCode = (err as { exitCode?: unknown }).exitCode;
  return exitCode === 1 || exitCode === 2 ? new ConfigError(err.message, exitCode) : err;
}
