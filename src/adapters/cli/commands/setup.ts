// otpgate setup ssh|rstudio: configure logins with a diff first (--dry-run), backups, validation
// and --rollback, refusing changes that would lock the admin out.

import { existsSync, realpathSync } from "node:fs";
import { UsageError, type ExitCode } from "../../../core/errors.js";
import { applyChanges, diffChanges, pendingChanges, rollback, SetupError, type FileChange } from "../../../admin/setup/apply.js";
import { reloadSshd, testLogin } from "../../../admin/setup/live.js";
import { inRoot } from "../../../admin/setup/paths.js";
import type { SshFactors } from "../../../admin/setup/plan.js";
import { HELPER_PATH, planRstudio, rstudioManifest, validateRstudio, type RstudioFactors } from "../../../admin/setup/setup-rstudio.js";
import { helperSecret, pamLineSecret } from "../../../admin/setup/written.js";
import { adminStateProblem, lockoutProblems, OLD_RADIUS_UNIT, planSsh, SSHD_CONFIG, sshManifest, validateSshd, type StatePeek } from "../../../admin/setup/setup-ssh.js";
import { accountStore } from "../../../stores/file-accounts.js";
import { describeProblems, installProblems } from "../../../platform/trusted-path.js";
import { parse } from "../args.js";
import { commandHelp, HELP_OPTION, type DescribedTable } from "../help.js";
import { readHidden } from "../hidden-input.js";
import type { Output } from "../output.js";
import { Cancelled, terminalPrompter } from "../prompt.js";
import { readStdin } from "../stdin.js";
import { fleetOptionsOf, STORE_OPTIONS } from "../store-options.js";
import { checkFleetForSetup } from "../../../admin/setup/fleet-check.js";

/** The admin's state file, read as the admin through the store factory (the lock-out guard). */
const peekState: StatePeek = (owner, path) => accountStore(owner, path).peek();

export const options = {
  "dry-run": { type: "boolean", help: "print the changes as a unified diff, change nothing" },
  rollback: { type: "boolean", help: "restore every file setup changed, byte for byte; refuses when a file was edited since setup wrote it" },
  force: { type: "boolean", help: "with --rollback: restore even files edited since" },
  factors: {
    type: "string",
    value: "F",
    help: "ssh: key+code (default) or key+password+code (password and code typed together at one prompt; local passwords only); rstudio: code (default) or password+code (password followed by the code in the password box; RStudio's own rserver-pam checks the password)",
  },
  admin: {
    type: "string",
    value: "NAME",
    help: "the admin who must still be able to log in (default SUDO_USER): must be enrolled, for ssh have an authorized key, and for the password factors have a usable (not locked) password",
  },
  "allow-unenrolled": { type: "boolean", help: "skip that lock-out guard" },
  nullok: {
    type: "boolean",
    help: "users without a state file may log in without a code (ssh: the key is still required; key+password+code: the password still is; refused for rstudio --factors code, where nothing else would check)",
  },
  "skew-adjust": {
    type: "boolean",
    help: "keep learning clock skew from codes. Off by default (noskewadj): skew learning lets someone who saw three consecutive codes replay them hours later and shift the user's accepted window; without it a clock more than ~1 step off makes codes fail until it is fixed (rstudio password+code: otpgate rstudio-helper runs with --noskewadj)",
  },
  "no-hint": { type: "boolean", help: 'ssh: no "Verification code required" text before the prompt' },
  reload: { type: "boolean", help: "ssh: reload the running sshd (SIGHUP to its PidFile's process) once the files are in place" },
  "test-login": {
    type: "boolean",
    help: "prove the new stack before reporting success: the admin's code (key+password+code: password then code) is read from the terminal or stdin and checked through the new PAM stack with pamtester; if it fails every file is restored. Uses up that code",
  },
  service: { type: "string", value: "NAME", help: "PAM service name (default sshd / rstudio)" },
  secret: { type: "string", value: "PATTERN", help: "state file pattern for otpgate pam (default ~/.google_authenticator)" },
  root: { type: "string", value: "DIR", help: "work on another filesystem root (tests, images)" },
  sshd: { type: "string", value: "PATH", help: "sshd used for validation (default /usr/sbin/sshd)" },
  "rserver-pam": { type: "string", value: "PATH", help: "RStudio's PAM helper (default /usr/lib/rstudio-server/bin/rserver-pam)" },
  backend: {
    type: "string",
    value: "B",
    help: 'ssh: pam_exec (default: pam_exec runs otpgate pam per login) or radius (pam_radius_auth.so asks a resident "otpgate server" over loopback: prompt "Verification code: ", no process per login; needs libpam-radius-auth and the otpgate-server service running; with key+password+code pam_unix asks the password first and the code is sent only when the password was right)',
  },
  "radius-port": { type: "string", value: "N", help: "port of otpgate radius on 127.0.0.1 (default 1812)" },
  node: { type: "string", value: "PATH", help: "the node binary the PAM line runs (default: this node)" },
  otpgate: { type: "string", value: "PATH", help: "the otpgate the PAM line runs (default: this otpgate)" },
  ...STORE_OPTIONS,
  ...HELP_OPTION,
} as const satisfies DescribedTable;

export const help = commandHelp(
  "setup",
  {
    usage: ["ssh [options]", "rstudio [options]", "ssh|rstudio --rollback [--force] [--root DIR]"],
    about: `
ssh: sshd asks for a public key, then a one-time code (keyboard-interactive through PAM):
  writes KbdInteractiveAuthentication yes, AuthenticationMethods publickey,keyboard-interactive,
  PasswordAuthentication no, UsePAM yes (as sshd_config.d/10-otpgate.conf when sshd_config
  includes that directory, else in sshd_config), and otpgate's auth lines in /etc/pam.d/sshd
  (the system password stack is disabled there). otpgate's line has require_publickey: the code
  counts only after sshd reports a completed public-key step, so the code alone is never an SSH
  password, also before sshd is reloaded. Validated with sshd -t, and with sshd -T for every
  kind of connection the configuration distinguishes (each Match block, and none), before it is
  kept. The PAM stack is live at once; sshd's settings after a reload (--reload, or asked on a
  terminal).
rstudio: /etc/pam.d/rstudio checks the code typed in RStudio's password box, and
  auth-pam-require-password-prompt=0 goes into /etc/rstudio/rserver.conf. With password+code
  otpgate's helper checks the code and RStudio's PAM service the password: switching factors
  removes the other mode's edits, and the chain is checked end to end before success.
Setup only writes PAM services of its own: rstudio refuses sshd's service (also the one a
  running sshd uses), sudo, su, login and the other system logins, common-*/system-auth and any
  file other services include; ssh refuses shared and included files. Files are written as
  UTF-8 and read back; the state file pattern is read back from disk and the admin's file
  looked up with it. otpgate's block goes before every auth rule, and the written stack is
  refused when an earlier rule can end it with success or jump over the code check.`,
    after: `
Exit status: 0 done (or nothing to change), 2 refused or failed (every file restored).

Many hosts (ssh --backend radius --store postgres://...): the otpgate-server unit decides on
the fleet database (--db-password-file and --db-key-file go into the unit as file paths, never
the password). Before anything is written, setup connects: the database must be reachable, its
schema migrated (otpgate db migrate), and the admin enrolled in it; otherwise it refuses and
changes nothing. When the database cannot be reached later, every login through this stack is
refused (closed by default) until it is back; keep a root console for that case.

Examples:
  sudo otpgate setup ssh --dry-run
  sudo otpgate setup ssh --test-login --reload
  sudo otpgate setup rstudio --factors password+code
  sudo otpgate setup ssh --rollback`,
  },
  options,
);

/** sshd's record of a completed publickey method, in its format (METHOD KEYTYPE BASE64). */
const TEST_LOGIN_KEY_INFO = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG90cGdhdGUtc2V0dXAtdGVzdC1sb2dpbi1rZXk=";

/** The admin's answer for --test-login: hidden on a terminal, else the first line of stdin. */
async function readTestAnswer(io: Output, admin: string, password: boolean): Promise<string> {
  const what = password ? `${admin}'s password immediately followed by a current code` : `a current code from ${admin}'s authenticator app`;
  if (process.stdin.isTTY) return readHidden(io, `Test login: type ${what}: `);
  const line = (await readStdin(600, 120_000)).toString("utf8").split("\n")[0]!.replace(/\r$/, "");
  if (!line) throw new UsageError(`--test-login needs ${what}: type it on the terminal or pipe it to stdin`);
  return line;
}

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("setup", argv, options);
  if (values.help) {
    io.out(help);
    return 0;
  }
  const target = positionals[0];
  if (positionals.length !== 1 || (target !== "ssh" && target !== "rstudio")) throw new UsageError("say what to set up: otpgate setup ssh, or otpgate setup rstudio");
  const root = values.root ?? "/";
  if (!root.startsWith("/")) throw new UsageError("--root must be an absolute path");
  if ((process.geteuid?.() ?? 0) !== 0 && root === "/") throw new UsageError("setup changes system files: run it as root (sudo otpgate setup ...)");
  const manifest = target === "ssh" ? sshManifest(root) : rstudioManifest(root);
  if (values.service !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(values.service)) throw new UsageError(`--service is a PAM service name (a file in /etc/pam.d), not "${values.service}"`);

  if (values.rollback) {
    const restored = rollback(manifest, { force: values.force === true });
    io.out(`restored ${restored.length} file(s): ${restored.join(", ")}`);
    if (target === "ssh") io.out("The restored PAM stack is live now; sshd's restored settings after a reload: systemctl reload ssh (or kill -HUP the sshd process)");
    return 0;
  }
  if (values.force) throw new UsageError("--force goes with --rollback");

  const node = values.node ?? process.execPath;
  const otpgate = values.otpgate ?? realpathSync(process.argv[1] ?? "");
  // Root runs these at every login: every component must be root's alone (sshd's StrictModes).
  const untrusted = installProblems({ node, launcher: otpgate });
  if (untrusted.length)
    throw new SetupError(
      `the PAM line would run ${otpgate} with ${node} as root, but ${describeProblems(untrusted)}; fix that first (${untrusted[0]!.fix}), or pass --node/--otpgate with root-owned absolute paths`,
    );
  const admin = values.admin ?? process.env.SUDO_USER;
  const skewAdjust = values["skew-adjust"] === true;
  const fleet = fleetOptionsOf(values);
  if (fleet !== null) {
    if (target !== "ssh" || values.backend !== "radius")
      throw new UsageError("--store goes with setup ssh --backend radius (the otpgate server decides on the fleet database; pam_exec and RStudio read the users' files)");
    if (values.nullok) throw new UsageError("--nullok is not available with --store: every name is an account of the fleet database, so any name would be let in");
    if (values.secret !== undefined) throw new UsageError("--secret names state files; with --store the accounts are the fleet database's");
    if (values["db-password-file"] !== undefined && !values["db-password-file"].startsWith("/")) throw new UsageError("--db-password-file must be an absolute path (it goes into the unit)");
    if (fleet.keyFile !== null && !fleet.keyFile.startsWith("/")) throw new UsageError("--db-key-file must be an absolute path (it goes into the unit)");
  }

  let changes: FileChange[];
  let pamPath: string;
  let passwordFactor: boolean;
  let validate: () => string | null = () => null;
  let ssh: { sshd: string; backend: "pam_exec" | "radius"; radiusPort: number } | null = null;
  if (target === "ssh") {
    const factors = (values.factors ?? "key+code") as SshFactors;
    if (factors !== "key+code" && factors !== "key+password+code") throw new UsageError(`--factors for ssh is key+code or key+password+code, not "${values.factors}"`);
    const backend = (values.backend ?? "pam_exec") as "pam_exec" | "radius";
    if (backend !== "pam_exec" && backend !== "radius") throw new UsageError(`--backend is pam_exec or radius, not "${values.backend}"`);
    const radiusPort = Number(values["radius-port"] ?? 1812);
    if (!Number.isInteger(radiusPort) || radiusPort < 1 || radiusPort > 65535) throw new UsageError(`--radius-port must be a port number, not "${values["radius-port"]}"`);
    const options = {
      root,
      service: values.service ?? "sshd",
      factors,
      hint: !values["no-hint"],
      nullok: values.nullok === true,
      secret: values.secret,
      node,
      otpgate,
      sshd: values.sshd ?? "/usr/sbin/sshd",
      backend,
      radiusPort,
      skewAdjust,
      store: fleet === null ? undefined : { url: fleet.url, passwordFile: fleet.passwordFile, keyFile: fleet.keyFile! },
    };
    changes = planSsh(options);
    validate = () => validateSshd(options, admin);
    pamPath = inRoot(root, `/etc/pam.d/${options.service}`);
    passwordFactor = factors === "key+password+code";
    ssh = { sshd: options.sshd, backend, radiusPort };
  } else {
    const factors = (values.factors ?? "code") as RstudioFactors;
    if (factors !== "code" && factors !== "password+code") throw new UsageError(`--factors for rstudio is code or password+code, not "${values.factors}"`);
    const options = {
      root,
      service: values.service ?? "rstudio",
      factors,
      nullok: values.nullok === true,
      secret: values.secret,
      node,
      otpgate,
      rserverPam: values["rserver-pam"] ?? "/usr/lib/rstudio-server/bin/rserver-pam",
      skewAdjust,
      sshd: ["/usr/sbin/sshd", ...(values.sshd ? [values.sshd] : [])],
    };
    changes = planRstudio(options);
    pamPath = inRoot(root, `/etc/pam.d/${options.service}`);
    const pamChange = changes.find((c) => c.path === pamPath);
    validate = () => validateRstudio(options, pamChange?.next ?? null);
    passwordFactor = factors === "password+code";
    if (values["test-login"] && passwordFactor)
      throw new UsageError("--test-login covers the PAM stack; with rstudio --factors password+code the login runs through RStudio's helper: sign in to RStudio to test it");
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
  // With the fleet store: the database reachable and migrated, and the admin's account read from
  // it, before anything is written; the lock-out guard then looks the admin up there.
  let peekAdmin = peekState;
  if (fleet !== null) {
    const checked = await checkFleetForSetup(fleet, values["allow-unenrolled"] ? undefined : admin);
    if (admin !== undefined && !values["allow-unenrolled"]) {
      if (checked.adminDocument === null)
        throw new SetupError(
          `refusing to change the login configuration, it would lock out the admin: ${admin} is not enrolled in the fleet database; run "otpgate enroll --user ${admin} --store ${fleet.url}" first. Nothing was changed`,
        );
      const text = checked.adminDocument;
      peekAdmin = () => text;
    }
  }
  if (!values["allow-unenrolled"]) {
    const problems = lockoutProblems(admin, values.secret, { root, key: target === "ssh", password: passwordFactor }, peekAdmin);
    if (problems.length) throw new SetupError(`refusing to change the login configuration, it would lock out the admin: ${problems.join("; ")}`);
  }
  // Before success: the state file pattern in what was written, read back from the bytes on disk as
  // otpgate will read it, is the one the lock-out guard looked up, and the admin's file is there.
  const written =
    target === "ssh" ? (ssh?.backend === "radius" ? () => values.secret : () => pamLineSecret(pamPath)) : () => (passwordFactor ? helperSecret(inRoot(root, HELPER_PATH)) : pamLineSecret(pamPath));
  const structural = validate;
  validate = () => {
    const problem = structural();
    if (problem) return problem;
    const secret = written();
    if (secret === null) return `otpgate's line is missing from what setup wrote; every file was restored`;
    if (secret !== (values.secret || undefined))
      return `the state file pattern reads back as ${JSON.stringify(secret ?? "(default)")} instead of ${JSON.stringify(values.secret ?? "(default)")}; every file was restored`;
    if (values["allow-unenrolled"] || admin === undefined) return null;
    const missing = adminStateProblem(admin, secret, peekAdmin);
    return missing ? `with the pattern as written, ${missing}; every file was restored` : null;
  };
  if (values["test-login"]) {
    if (!admin) throw new UsageError("--test-login logs in as the admin: pass --admin NAME (or run it with sudo)");
    const answer = await readTestAnswer(io, admin, passwordFactor).catch((err: unknown) => {
      throw err instanceof Cancelled ? new UsageError("cancelled; nothing was changed") : err;
    });
    const checks = validate;
    validate = () => {
      const problem = checks();
      if (problem) return problem;
      // What sshd puts into the PAM environment after an accepted key (a stand-in key: the admin's
      // key is checked by sshd, and its presence by the lock-out guard); RStudio sets nothing.
      const env = target === "ssh" ? [`SSH_AUTH_INFO_0=${TEST_LOGIN_KEY_INFO}`, "SSH_CONNECTION=127.0.0.1 1 127.0.0.1 22"] : [];
      const r = testLogin({ pamText: changes.find((c) => c.path === pamPath)?.next ?? "", user: admin, answer, env });
      const hint = ssh?.backend === "radius" ? " (is otpgate server running? systemctl enable --now otpgate-server)" : "";
      return r.ok ? null : `the test login of ${admin} through the new PAM stack failed (${r.why})${hint}; every file was restored`;
    };
  }
  const { backups } = applyChanges(pending, { manifest, now: new Date(), validate });
  io.out(`otpgate setup ${target}: changed ${pending.map((c) => c.path).join(", ")}`);
  if (backups.length) io.out(`backups: ${backups.join(", ")}`);
  if (values["test-login"]) io.out(`test login of ${admin} through the new PAM stack succeeded (that code is now used up)`);
  if (target === "rstudio") {
    io.out(
      values.factors === "password+code"
        ? `Live after RStudio Server restarts: rserver.conf's auth-pam-helper-path points at otpgate's helper, and ${pamPath} checks the password (otpgate's code line is not in it).`
        : `Live now: ${pamPath} (rserver-pam reads it at every sign-in); rserver.conf after RStudio Server restarts.`,
    );
    io.out("Next: restart RStudio Server (rstudio-server restart) and sign in with your user name and");
    io.out(values.factors === "password+code" ? "your password immediately followed by the 6-digit code." : "the 6-digit code in the password box. To undo: otpgate setup rstudio --rollback");
    return 0;
  }
  const s = ssh!;
  if (s.backend === "radius") {
    // An older install's unit runs otpgate radius on the same port: only one of them may run.
    const old = existsSync(inRoot(root, `/etc/systemd/system/${OLD_RADIUS_UNIT}`))
      ? `systemctl disable --now ${OLD_RADIUS_UNIT.replace(/\.service$/, "")} (an older install's unit, same port) && `
      : "";
    io.out(`Start the code checker first: ${old}systemctl daemon-reload && systemctl enable --now otpgate-server (127.0.0.1:${s.radiusPort})`);
    if (fleet !== null)
      io.out(
        "The fleet database decides every login: while it cannot be reached, every SSH login through this stack is refused (closed by default); otpgate server logs one line when that starts and one when it is back, and reconnects by itself. Keep a root console (or another way in) for that case.",
      );
  }
  io.out(`Live now: ${pamPath}. Every SSH login that reaches PAM, through the running sshd too, needs the code,`);
  io.out("and the code counts only after sshd reports a completed public-key step: the running sshd's password");
  io.out("method cannot log anyone in, with a password or with the code. Until sshd is reloaded it still uses its");
  io.out("old settings: where those let a key alone in (AuthenticationMethods any), a key alone still works.");
  io.out("After sshd is reloaded: every connection (each Match block was checked with sshd -T) needs a public key,");
  io.out("then the code (AuthenticationMethods publickey,keyboard-interactive; PasswordAuthentication no).");
  let reload = values.reload === true;
  if (!reload && process.stdin.isTTY && process.stdout.isTTY) {
    const prompter = terminalPrompter(io);
    try {
      reload = await prompter.yesNo("Reload sshd now? Keep this session open until a new login works.");
    } catch (err) {
      if (!(err instanceof Cancelled)) throw err;
    } finally {
      prompter.close();
    }
  }
  if (reload) {
    const r = reloadSshd(s.sshd, inRoot(root, SSHD_CONFIG));
    if (r.ok) io.out(`reloaded sshd (pid ${r.pid}): its new settings are live for new connections.`);
    else io.err(`sshd was not reloaded: ${r.why}`);
  } else {
    io.out("Next: keep this session open, reload sshd (systemctl reload ssh, or kill -HUP the sshd process),");
  }
  io.out("then log in from a NEW terminal with your key and a code. If it fails: otpgate setup ssh --rollback");
  return 0;
}
