// otpgate gateway: the web login gateway in the foreground (see otpgate gateway --help).

import type { ExitCode } from "../../../core/errors.js";
import { ConfigError, UsageError } from "../../../core/errors.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";

export const help = `Usage: otpgate gateway --config FILE [--check-config]
       otpgate gateway keys --config FILE [--rotate] [--retire-old [--force]]
       otpgate gateway sessions --config FILE --revoke USER | --list

A login page with one-time codes in front of web apps (RStudio Server, Jupyter, ...): a
reverse proxy to "upstream", and a forward-auth endpoint PREFIX/auth for nginx auth_request
(200 or 401, with Remote-User) and Traefik/Caddy (forward_auth: redirect). Codes are checked
with the users' state files, like otpgate verify. Runs in the foreground; one JSON line per
login decision on stdout.

Configuration (YAML):
  listen: 127.0.0.1:9091               # where the gateway listens
  public_url: https://app.example.com  # how users reach it (https: cookies are Secure)
  upstream: http://127.0.0.1:8787      # optional: the app to proxy to
  pages_prefix: /_otpgate              # login page, logout, auth, metrics live under it
  allowed_hosts: [app.example.com]     # where a login may send the browser back to
  tls: {cert: FILE, key: FILE}         # optional: serve HTTPS itself
  state_files: ~/.google_authenticator # path pattern of the users' state files
  keys_file: /var/lib/otpgate/gateway.keys   # created 0600 on first start
  session: {idle: 30m, absolute: 12h}
  regulation: {max_retries: 5, find_time: 2m, ban_time: 5m}   # per user and per client address
  forward_auth: status                 # status (nginx) or redirect (Traefik, Caddy)
  cookie_name: otpgate_session
  password_file: /etc/otpgate/passwords   # optional: a password too (otpgate passwd USER)
  invites_dir: /var/lib/otpgate/invites   # invitations from otpgate invite USER
  issuer: example.com                  # name shown in the app for invited users (default: host name)
  proxy_engine: fast                   # fast (pass-through for signed-in requests) or node
  head_timeout: 30s                    # request heads must be complete within this (slowloris)

Options:
      --config FILE     the configuration
      --check-config    validate the configuration and exit (0 valid, 2 not)
  -h, --help            show this help

Subcommands (run next to a running gateway; it notices within a second):
  keys      list the keys; --rotate adds a new one, --retire-old drops older ones
  sessions  --revoke USER logs USER out everywhere; --list shows what is stored
            (otpgate gateway keys --help, otpgate gateway sessions --help)
`;

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  // Subcommands (key rotation, log out everywhere): gateway-admin.ts.
  if (argv[0] === "keys" || argv[0] === "sessions") {
    const admin = await import("./gateway-admin.js");
    return argv[0] === "keys" ? admin.runKeys(argv.slice(1), io) : admin.runSessions(argv.slice(1), io);
  }
  const { values } = parse("gateway", argv, { config: { type: "string" }, "check-config": { type: "boolean" }, help: { type: "boolean", short: "h" } });
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  if (!values.config) throw new UsageError("--config FILE is required; see otpgate gateway --help");
  const { createGateway, loadGatewayConfig, preflight } = await import("../../http/gateway-entry.js");
  const config = loadGatewayConfig(values.config);
  const notes = preflight(config);
  if (values["check-config"]) {
    io.out(`${values.config}: valid (listen ${config.listen.host}:${config.listen.port}, ${config.upstream ? `proxy to ${config.upstream.origin}` : "forward-auth only"}${notes.map((n) => `; ${n}`).join("")})`);
    return 0;
  }
  const gateway = createGateway(config, (event) => io.out(JSON.stringify({ time: new Date().toISOString(), ...event })));
  await new Promise<void>((resolve, reject) => {
    gateway.server.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE" ? "the address is in use by another process" : err.code === "EACCES" ? "permission denied (ports below 1024 need root)" : err.code === "EADDRNOTAVAIL" ? "no such local address" : err.message;
      reject(new ConfigError(`cannot listen on ${config.listen.host}:${config.listen.port}: ${why}; change listen in ${values.config}`));
    });
    gateway.server.listen(config.listen.port, config.listen.host, () => resolve());
  });
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
