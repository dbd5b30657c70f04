// One line to syslog (facility authpriv) through logger(1); Node cannot write to /dev/log, a
// datagram socket, by itself. Fire and forget: a login never waits for, or fails because of, logging.

import { spawnDetached } from "./spawn-detached.js";

export type SyslogLevel = "info" | "notice" | "warning" | "err" | "debug";

export interface SyslogTarget {
  /** Socket path (default /dev/log). */
  readonly socket?: string | undefined;
}

/** Keep a log line to printable ASCII without line breaks (user names and hosts come from outside). */
export function sanitize(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 900);
}

export function syslog(level: SyslogLevel, message: string, target: SyslogTarget = {}): void {
  const args = ["-p", `authpriv.${level}`, "-t", "otpgate", `--id=${process.pid}`];
  if (target.socket) args.push("-u", target.socket);
  args.push("--", sanitize(message));
  spawnDetached("/usr/bin/logger", args);
}
