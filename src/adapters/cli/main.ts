// otpgate command line: a thin command table that loads each command only when it runs, and the
// one place where errors become a message and an exit code.

import { OtpgateError, type ExitCode } from "../../core/errors.js";
import { printableLines } from "../../core/printable.js";
import { processOutput, type Output } from "./output.js";
import { VERSION } from "./version.js";

interface Command {
  readonly summary: string;
  load(): Promise<{ run(argv: string[], io: Output): Promise<ExitCode> }>;
}

const commands: Record<string, Command> = {
  enroll: { summary: "enroll a user: secret, QR code, emergency codes (google-authenticator's flags)", load: () => import("./commands/enroll.js") },
  pam: { summary: "the login check that pam_exec runs (see otpgate pam --help)", load: () => import("./commands/pam.js") },
  gateway: { summary: "web login gateway: login page, reverse proxy, forward-auth (nginx, Traefik, Caddy)", load: () => import("./commands/gateway.js") },
  invite: { summary: "a one-time link for setting up the app in the browser (through otpgate gateway)", load: () => import("./commands/invite.js") },
  passwd: { summary: "set a user's password for the gateway's optional password factor", load: () => import("./commands/passwd.js") },
  server: { summary: "resident decision service: RADIUS for pam_radius_auth.so, a unix-socket API for the gateway", load: () => import("./commands/server.js") },
  radius: { summary: "the old name of otpgate server (the API socket only with --socket)", load: () => import("./commands/radius.js") },
  setup: { summary: "configure sshd or RStudio Server logins (diff, backup, validation, rollback)", load: () => import("./commands/setup.js") },
  "rstudio-helper": { summary: "RStudio's auth-pam-helper-path for password + code (written by setup rstudio)", load: () => import("./commands/rstudio-helper.js") },
  doctor: { summary: "check sshd, PAM stacks, state files, installation and clock; each finding with a fix", load: () => import("./commands/doctor.js") },
  verify: { summary: "check a code against a state file (exit 0 accepted, 1 rejected, 2 error)", load: () => import("./commands/verify.js") },
  status: { summary: "show an account's enrollment, settings and state (--all: every account)", load: () => import("./commands/status.js") },
  codes: { summary: "emergency codes left; --regenerate replaces them", load: () => import("./commands/codes.js") },
  db: { summary: "the fleet database (PostgreSQL): migrate, rotate-key, audit", load: () => import("./commands/db.js") },
  qr: { summary: "show an account's QR code and secret again", load: () => import("./commands/qr.js") },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(15)} ${c.summary}`);
  return [
    "Usage: otpgate <command> [options]",
    "",
    "Two-factor authentication (TOTP) for Linux logins, compatible with libpam-google-authenticator.",
    "",
    "Commands:",
    ...lines,
    "",
    "Options:",
    "  -h, --help     show this help (otpgate <command> --help for a command's options)",
    "      --version  print the version",
  ].join("\n");
}

export async function main(argv: string[], io: Output = processOutput): Promise<ExitCode> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    io.out(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    io.out(`otpgate ${VERSION}`);
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    io.err(`otpgate: unknown command "${name}"; run otpgate --help for the list`);
    return 2;
  }
  try {
    const mod = await command.load();
    return await mod.run(rest, io);
  } catch (caught) {
    const err = ownError(caught);
    if (err instanceof OtpgateError) {
      io.err(`otpgate ${name}: ${printableLines(err.message)}`);
      return err.exitCode;
    }
    io.err(`otpgate ${name}: internal error: ${printableLines((err as Error)?.message ?? String(err))}; please report it`);
    return 2;
  }
}

/**
 * The gateway and QR code are bundled into their own files, each with its own copy of the error
 * classes, so their OtpgateErrors fail instanceof here: recognised by shape (an Error with an exit
 * code of 1 or 2 and one of our class names), they are the user's errors, not internal ones.
 */
function ownError(err: unknown): unknown {
  if (err instanceof OtpgateError || !(err instanceof Error)) return err;
  const exitCode = (err as { exitCode?: unknown }).exitCode;
  if ((exitCode === 1 || exitCode === 2) && /^(Otpgate|Usage|StateFile|Config|LockTimeout|Setup|UserName)Error$/.test(err.name)) return new OtpgateError(err.message, exitCode);
  return err;
}
