// otpgate setup ssh|rstudio: configure logins with a diff first (--dry-run), backups, validation
// and --rollback, refusing changes that would lock the admin out.

import { realpathSync } from "node:fs";
import { UsageError, type ExitCode } from "../../../core/errors.js";
import { applyChanges, diffChanges, pendingChanges, rollback, SetupError } from "../../../services/setup/apply.js";
import type { SshFactors } from "../../../services/setup/plan.js";
import { planRstudio, rstudioManifest, validateRstudio, type RstudioFactors } from "../../../services/setup/setup-rstudio.js";
import { lockoutProblems, planSsh, sshManifest, validateSshd } from "../../../services/setup/setup-ssh.js";
import { describeProblems, installProblems } from "../../../platform/trusted-path.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";

export const help = `Usage: otpgate setup ssh [options]
       otpgate setup rstudio [options]
       otpgate setup ssh|rstudio --rollback [--root DIR]

ssh: sshd asks for a public key, then a one-time code (keyboard-interactive through PAM):
  writes KbdInteractiveAuthentication yes, AuthenticationMethods publickey,keyboard-interactive,
  PasswordAuthentication no, UsePAM yes (as sshd_config.d/10-otpgate.conf when sshd_config
  includes that directory, else in sshd_config), and otpgate's auth lines in /etc/pam.d/sshd
  (the system password stack is disabled there). Validated with sshd -t and sshd -T before it
  is kept; nothing is reloaded.
rstudio: /etc/pam.d/rstudio checks the code typed in RStudio's password box, and
  auth-pam-require-password-prompt=0 goes into /etc/rstudio/rserver.conf.

Options:
      --dry-run               print the changes as a unified diff, change nothing
      --rollback              restore every file setup changed, byte for byte
      --factors F             ssh: key+code (default) or key+password+code (password and
                              code typed together at one prompt; local passwords only);
                              rstudio: code (default) or password+code (password followed
                              by the code in the password box; RStudio's own rserver-pam
                              checks the password)
      --admin NAME            the admin who must still be able to log in (default SUDO_USER):
                              must be enrolled and, for ssh, have an authorized key
      --allow-unenrolled      skip that lock-out guard
      --nullok                users without a state file may log in without a code
      --no-hint               ssh: no "Verification code required" text before the prompt
      --service NAME          PAM service name (default sshd / rstudio)
      --secret PATTERN        state file pattern for otpgate pam (default ~/.google_authenticator)
      --root DIR              work on another filesystem root (tests, images)
      --sshd PATH             sshd used for validation (default /usr/sbin/sshd)
      --rserver-pam PATH      RStudio's PAM helper (default /usr/lib/rstudio-server/bin/rserver-pam)
      --backend B             ssh: pam_exec (default: pam_exec runs otpgate pam per login) or
                              radius (pam_radius_auth.so asks a resident "otpgate radius" over
                              loopback: prompt "Verification code: ", no process per login;
                              needs libpam-radius-auth and the otpgate-radius service running)
      --radius-port N         port of otpgate radius (default 18120)
      --node PATH, --otpgate PATH   what the PAM line runs (default: this node and this otpgate)
  -h, --help                  show this help

Exit status: 0 done (or nothing to change), 2 refused or failed (every file restored).

Examples:
  sudo otpgate setup ssh --dry-run
  sudo otpgate setup ssh
  sudo otpgate setup rstudio --factors password+code
  sudo otpgate setup ssh --rollback
`;

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("setup", argv, {
    "dry-run": { type: "boolean" },
    rollback: { type: "boolean" },
    factors: { type: "string" },
    admin: { type: "string" },
    "allow-unenrolled": { type: "boolean" },
    nullok: { type: "boolean" },
    "no-hint": { type: "boolean" },
    service: { type: "string" },
    secret: { type: "string" },
    root: { type: "string" },
    sshd: { type: "string" },
    "rserver-pam": { type: "string" },
    node: { type: "string" },
    otpgate: { type: "string" },
    backend: { type: "string" },
    "radius-port": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  const target = positionals[0];
  if (positionals.length !== 1 || (target !== "ssh" && target !== "rstudio")) throw new UsageError("say what to set up: otpgate setup ssh, or otpgate setup rstudio");
  const root = values.root ?? "/";
  if (!root.startsWith("/")) throw new UsageError("--root must be an absolute path");
  if ((process.geteuid?.() ?? 0) !== 0 && root === "/") throw new UsageError("setup changes system files: run it as root (sudo otpgate setup ...)");
  const manifest = target === "ssh" ? sshManifest(root) : rstudioManifest(root);

  if (values.rollback) {
    const restored = rollback(manifest);
    io.out(`restored ${restored.length} file(s): ${restored.join(", ")}`);
    if (target === "ssh") io.out("reload sshd to use them: systemctl reload ssh (or kill -HUP the sshd process)");
    return 0;
  }

  const node = values.node ?? process.execPath;
  const otpgate = values.otpgate ?? realpathSync(process.argv[1] ?? "");
  // Root runs these at every login: every component must be root's alone (sshd's StrictModes).
  const untrusted = installProblems({ node, launcher: otpgate });
  if (untrusted.length) throw new SetupError(`the PAM line would run ${otpgate} with ${node} as root, but ${describeProblems(untrusted)}; fix that first (${untrusted[0]!.fix}), or pass --node/--otpgate with root-owned absolute paths`);
  const admin = values.admin ?? process.env.SUDO_USER;

  let changes;
  let validate: () => string | null = () => null;
  if (target === "ssh") {
    const factors = (values.factors ?? "key+code") as SshFactors;
    if (factors !== "key+code" && factors !== "key+password+code") throw new UsageError(`--factors for ssh is key+code or key+password+code, not "${values.factors}"`);
    const backend = (values.backend ?? "pam_exec") as "pam_exec" | "radius";
    if (backend !== "pam_exec" && backend !== "radius") throw new UsageError(`--backend is pam_exec or radius, not "${values.backend}"`);
    if (backend === "radius" && factors !== "key+code") throw new UsageError("--backend radius supports --factors key+code only");
    const radiusPort = Number(values["radius-port"] ?? 18120);
    if (!Number.isInteger(radiusPort) || radiusPort < 1 || radiusPort > 65535) throw new UsageError(`--radius-port must be a port number, not "${values["radius-port"]}"`);
    const options = { root, service: values.service ?? "sshd", factors, hint: !values["no-hint"], nullok: values.nullok === true, secret: values.secret, node, otpgate, sshd: values.sshd ?? "/usr/sbin/sshd", backend, radiusPort };
    changes = planSsh(options);
    validate = () => validateSshd(options, admin);
  } else {
    const factors = (values.factors ?? "code") as RstudioFactors;
    if (factors !== "code" && factors !== "password+code") throw new UsageError(`--factors for rstudio is code or password+code, not "${values.factors}"`);
    const options = { root, service: values.service ?? "rstudio", factors, nullok: values.nullok === true, secret: values.secret, node, otpgate, rserverPam: values["rserver-pam"] ?? "/usr/lib/rstudio-server/bin/rserver-pam" };
    changes = planRstudio(options);
    const pamChange = changes.find((c) => c.path.endsWith(`/pam.d/${options.service}`));
    validate = () => validateRstudio(options, pamChange?.next ?? null);
  }

  const pending = pendingChanges(changes);
  if (pending.length === 0) {
    io.out(`otpgate setup ${target}: already configured, nothing to change`);
    return 0;
  }
  if (values["dry-run"]) {
    io.out(diffChanges(pending).trimEnd());
    io.out(`(dry run: ${pending.length} file(s) would change; nothing was written)`);
    return 0;
  }
  if (!values["allow-unenrolled"]) {
    const problems = target === "ssh" ? lockoutProblems(admin, values.secret) : lockoutProblems(admin, values.secret).filter((p) => !p.includes("authorized_keys"));
    if (problems.length) throw new SetupError(`refusing to change the login configuration, it would lock out the admin: ${problems.join("; ")}`);
  }
  const { backups } = applyChanges(pending, { manifest, now: new Date(), validate });
  io.out(`otpgate setup ${target}: changed ${pending.map((c) => c.path).join(", ")}`);
  if (backups.length) io.out(`backups: ${backups.join(", ")}`);
  if (target === "ssh") {
    if (values.backend === "radius") io.out("Start the code checker first: systemctl daemon-reload && systemctl enable --now otpgate-radius");
    io.out("Next: keep this session open, reload sshd (systemctl reload ssh, or kill -HUP the sshd process),");
    io.out("then log in from a NEW terminal with your key and a code. If it fails: otpgate setup ssh --rollback");
  } else {
    io.out("Next: restart RStudio Server (rstudio-server restart) and sign in with your user name and");
    io.out(values.factors === "password+code" ? "your password immediately followed by the 6-digit code." : "the 6-digit code in the password box. To undo: otpgate setup rstudio --rollback");
  }
  return 0;
}
