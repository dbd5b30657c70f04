// otpgate doctor: print every check with its fix; exit 1 when something is wrong.

import { UsageError, type ExitCode } from "../../../core/errors.js";
import { printable, printableJson } from "../../../core/printable.js";
import { systemClock } from "../../../platform/clock.js";
import { allUsers, lookupUserByName } from "../../../platform/users.js";
import { runDoctor } from "../../../admin/doctor.js";
import { accountStore } from "../../../stores/file-accounts.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import { VERSION } from "../version.js";
import type { Output } from "../output.js";

export const options = {
  user: { type: "string", value: "NAME", help: "check only this user's state file (default: every user)" },
  json: { type: "boolean", help: "findings as JSON" },
  root: { type: "string", value: "DIR", help: "check another filesystem root (config files only)" },
  sshd: { type: "string", value: "PATH", help: "sshd binary (default /usr/sbin/sshd)" },
  "ssh-service": { type: "string", value: "NAME", help: "PAM service of sshd (default sshd)" },
  "rstudio-service": { type: "string", value: "NAME", help: "PAM service of RStudio (default rstudio)" },
  secret: { type: "string", value: "PATTERN", help: "state file pattern (default ~/.google_authenticator)" },
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "doctor",
  {
    usage: ["[--user NAME] [--json] [options]"],
    about: `
Checks and explains: sshd's effective settings (sshd -T), the PAM stacks of sshd and RStudio
(the pam_exec line, absolute paths that exist, quiet, the setcred-safe pattern), the state
files of enrolled users (owner, mode, content), the otpgate and Node versions, otpgate's own
files, and clock synchronisation. Every finding comes with a fix.`,
    after: "Exit status: 0 nothing wrong (warnings allowed), 1 something is wrong.",
  },
  options,
);

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values } = parse("doctor", argv, options);
  if (values.help) {
    io.out(help);
    return 0;
  }
  let users;
  if (values.user !== undefined) {
    const u = lookupUserByName(values.user);
    if (!u) throw new UsageError(`no such user "${values.user}"; check the name with getent passwd`);
    users = [u];
  } else users = allUsers();
  // As invoked: a link (/usr/local/bin/otpgate) is checked, then everything it points to.
  const launcher = process.argv[1] ?? "";
  const findings = runDoctor({
    root: values.root ?? "/",
    sshd: values.sshd ?? "/usr/sbin/sshd",
    sshService: values["ssh-service"] ?? "sshd",
    rstudioService: values["rstudio-service"] ?? "rstudio",
    users,
    secret: values.secret,
    openState: (owner, path) => accountStore(owner, path),
    version: VERSION,
    install: launcher.startsWith("/") ? { node: process.execPath, launcher } : null,
    nowMs: systemClock.nowMs(),
  });
  // Messages quote users' files, names and paths: printed with control characters escaped.
  if (values.json) io.out(printableJson(findings));
  else {
    const mark = { ok: "ok  ", info: "info", warn: "WARN", fail: "FAIL" } as const;
    for (const f of findings) io.out(`${mark[f.severity]}  ${f.check.padEnd(12)} ${printable(f.message)}${f.fix ? `\n      ${"".padEnd(12)} fix: ${printable(f.fix)}` : ""}`);
  }
  return findings.some((f) => f.severity === "fail") ? 1 : 0;
}
