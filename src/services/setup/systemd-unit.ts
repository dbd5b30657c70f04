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
  "UMask=0077",
];

/** The fixed directory a state-file pattern lives under (before ~ or ${...}), or null for home directories. */
export function stateRoot(pattern: string | undefined): string | null {
  if (!pattern || !pattern.startsWith("/")) return null;
  const fixed = pattern.split(/\$\{/)[0]!;
  const dir = fixed.slice(0, fixed.lastIndexOf("/"));
  return dir === "" ? null : dir;
}

function serviceUnit(unit: readonly string[], node: string, otpgate: string, args: readonly string[], service: readonly string[]): string {
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
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Root's resident server (otpgate server, or otpgate radius): hardened; state files stay writable. */
export function serverUnit(node: string, otpgate: string, args: readonly string[], options: { readonly stateFiles?: string | undefined } = {}): string {
  const root = stateRoot(options.stateFiles);
  return serviceUnit(["Description=otpgate decision service (RADIUS for pam_radius_auth, unix-socket API for the gateway)", "Before=ssh.service"], node, otpgate, args, [
    `CapabilityBoundingSet=${SERVER_CAPABILITIES.join(" ")}`,
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
 * directories and no capability but binding a port below 1024.
 */
export function gatewayUnit(node: string, otpgate: string, args: readonly string[], options: { readonly user?: string; readonly socketGroup?: string } = {}): string {
  const user = options.user ?? "otpgate-gw";
  return serviceUnit(["Description=otpgate web login gateway (unprivileged; asks otpgate server)", "After=otpgate-server.service network-online.target", "Wants=otpgate-server.service network-online.target"], node, otpgate, args, [
    `User=${user}`,
    `Group=${user}`,
    `SupplementaryGroups=${options.socketGroup ?? "otpgate"}`,
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    "ProtectHome=yes",
    "StateDirectory=otpgate-gateway",
    "StateDirectoryMode=0700",
  ]);
}
