// The systemd units: otpgate-radius / otpgate-server (root, hardened) and otpgate-gateway (its own
// user). systemd rewrites an ExecStart= line before it runs it (see
// systemd.service(5) "Command lines" and systemd.unit(5) "Specifiers"): %X specifiers are resolved
// on load, $NAME and ${NAME} are expanded from the environment at exec time, and words are split
// at blanks with C-style escapes inside quotes. Each argument is therefore written with % as %%,
// $ as $$, inside double quotes with \ and " escaped, so systemd passes exactly these bytes.

import { SetupError } from "./apply.js";
import { UNSAFE_ENV } from "./pam-line.js";

/** One ExecStart= word that systemd turns back into `arg` exactly. */
export function systemdWord(arg: string): string {
  if (/[\x00-\x1f\x7f]/.test(arg)) throw new SetupError(`"${arg.replace(/[\x00-\x1f\x7f]/g, "?")}" contains a control character and cannot be written into a systemd unit`);
  const escaped = arg.replace(/%/g, "%%").replace(/\$/g, "$$$$").replace(/\\/g, "\\\\").replace(/"/g, '\\"');
  return `"${escaped}"`;
}

/**
 * The sandbox of the resident server, which runs as root only to switch to each state file's owner:
 * the capabilities for that (setuid/setgid), for giving the API socket to its group (chown) and for
 * a RADIUS port below 1024; the file system read-only except its own directories and the homes
 * where state files live (ProtectSystem=strict + ReadWritePaths); no other address families.
 * No PrivateNetwork: the per-account locks are abstract unix sockets shared with pam_exec logins.
 */
export const SERVER_CAPABILITIES = ["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"] as const;

const COMMON_SANDBOX = [
  "NoNewPrivileges=yes",
  "ProtectSystem=strict",
  "PrivateTmp=yes",
  "PrivateDevices=yes",
  "ProtectKernelTunables=yes",
  "ProtectKernelModules=yes",
  "ProtectKernelLogs=yes",
  "ProtectControlGroups=yes",
  "ProtectClock=yes",
  "ProtectHostname=yes",
  "RestrictNamespaces=yes",
  "RestrictRealtime=yes",
  "RestrictSUIDSGID=yes",
  "LockPersonality=yes",
  "SystemCallArchitectures=native",
  "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
  // @system-service holds @setuid and @chown, which the server needs to act as each user and to
  // give the API socket to its group; a call outside it fails with EPERM rather than killing node.
  "SystemCallFilter=@system-service",
  "SystemCallErrorNumber=EPERM",
  "ProtectProc=invisible",
  "UMask=0077",
];

/** The fixed directory a state-file pattern lives under (before ~ or ${...}), or null for home directories. */
export function stateRoot(pattern: string | undefined): string | null {
  if (!pattern || !pattern.startsWith("/")) return null;
  const fixed = pattern.split(/\$\{/)[0]!;
  const dir = fixed.slice(0, fixed.lastIndexOf("/"));
  return dir === "" ? null : dir;
}

function serviceUnit(unit: readonly string[], node: string, otpgate: string, args: readonly string[], service: readonly string[], afterSandbox: readonly string[] = []): string {
  return [
    "[Unit]",
    ...unit,
    "",
    "[Service]",
    // Variables a `systemctl set-environment` would hand to every service, removed before node starts.
    `UnsetEnvironment=${UNSAFE_ENV.join(" ")}`,
    `ExecStart=${[node, otpgate, ...args].map(systemdWord).join(" ")}`,
    "Restart=always",
    ...service,
    ...COMMON_SANDBOX,
    ...afterSandbox,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Root's resident server (otpgate server, or otpgate radius): hardened; state files stay writable. */
export function serverUnit(node: string, otpgate: string, args: readonly string[], options: { readonly stateFiles?: string | undefined; readonly network?: boolean | undefined } = {}): string {
  const root = stateRoot(options.stateFiles);
  // With the fleet store (--store): the database is reached over the network once it is up; until
  // then (and whenever it is down) every login is refused, and the server retries by itself.
  const network = options.network ? ["After=network-online.target", "Wants=network-online.target"] : [];
  return serviceUnit(["Description=otpgate decision service (RADIUS for pam_radius_auth, unix-socket API for the gateway)", "Before=ssh.service", ...network], node, otpgate, args, [
    `CapabilityBoundingSet=${SERVER_CAPABILITIES.join(" ")}`,
    // The API takes at most 512 connections (http-api.ts); the rest is for RADIUS's state files and getent.
    "LimitNOFILE=8192",
    // systemctl reload: the server re-reads its --clients-file (other options need a restart).
    "ExecReload=/bin/kill -HUP $MAINPID",
    "RuntimeDirectory=otpgate",
    "RuntimeDirectoryMode=0750",
    "StateDirectory=otpgate",
    "StateDirectoryMode=0700",
    // State files: ~/.google_authenticator in home directories, or below the pattern's directory.
    // Homes elsewhere than /home need a drop-in with ReadWritePaths=.
    `ReadWritePaths=-/home -/root${root && !root.startsWith("/home") && root !== "/root" ? ` ${systemdWord(`-${root}`)}` : ""}`,
  ]);
}

export function radiusUnit(node: string, otpgate: string, args: readonly string[], options: { readonly stateFiles?: string | undefined } = {}): string {
  return serverUnit(node, otpgate, args, options).replace(/^Description=.*$/m, "Description=otpgate one-time code checker for pam_radius_auth (loopback RADIUS)");
}

/**
 * The gateway: its own unprivileged user, in the server's socket group, with no view of home
 * directories or other processes, and no capability at all: its default listen, 127.0.0.1:9091,
 * needs none, and an ambient CAP_NET_BIND_SERVICE would stay for the process's whole life (a
 * compromised gateway could bind the RADIUS port while otpgate-server restarts; red team 2, F7).
 */
export const GATEWAY_LOW_PORT_NOTE = [
  "# Listens on 127.0.0.1:9091 behind the web server by default, with no capability. To listen on a",
  "# port below 1024 (e.g. 443) instead, add a drop-in (systemctl edit otpgate-gateway) with:",
  "#   [Service]",
  "#   CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
  "#   AmbientCapabilities=CAP_NET_BIND_SERVICE",
];

export function gatewayUnit(node: string, otpgate: string, args: readonly string[], options: { readonly user?: string; readonly socketGroup?: string } = {}): string {
  const user = options.user ?? "otpgate-gw";
  return serviceUnit(
    ["Description=otpgate web login gateway (unprivileged; asks otpgate server)", "After=otpgate-server.service network-online.target", "Wants=otpgate-server.service network-online.target"],
    node,
    otpgate,
    args,
    [
      `User=${user}`,
      `Group=${user}`,
      `SupplementaryGroups=${options.socketGroup ?? "otpgate"}`,
      ...GATEWAY_LOW_PORT_NOTE,
      "CapabilityBoundingSet=",
      "ProtectHome=yes",
      "ProcSubset=pid",
      "PrivateMounts=yes",
      "RemoveIPC=yes",
      "LimitNOFILE=16384",
      "StateDirectory=otpgate-gateway",
      "StateDirectoryMode=0700",
    ],
    [
      // After @system-service (the first SystemCallFilter= line decides allow-list mode): the gateway
      // needs neither setuid nor chown, which @system-service lets through for the server.
      "SystemCallFilter=~@privileged @resources",
    ],
  );
}
