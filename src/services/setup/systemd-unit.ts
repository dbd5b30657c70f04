// The otpgate-radius systemd unit. systemd rewrites an ExecStart= line before it runs it (see
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

export function radiusUnit(node: string, otpgate: string, args: readonly string[]): string {
  return [
    "[Unit]",
    "Description=otpgate one-time code checker for pam_radius_auth (loopback RADIUS)",
    "Before=ssh.service",
    "",
    "[Service]",
    // Variables a `systemctl set-environment` would hand to every service, removed before node starts.
    `UnsetEnvironment=${UNSAFE_ENV.join(" ")}`,
    `ExecStart=${[node, otpgate, ...args].map(systemdWord).join(" ")}`,
    "Restart=always",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
