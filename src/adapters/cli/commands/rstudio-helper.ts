// otpgate rstudio-helper: set as RStudio Server's auth-pam-helper-path (by setup rstudio
// --factors password+code). rserver runs it as root with `USER SERVICE REQUIRE_PROMPT` and the
// password box's content on stdin; the content is the password immediately followed by the code.
// The code is checked against the user's state file, then the password goes to RStudio's own
// rserver-pam with the same arguments. Exit 0 only when both are right.

import { spawnSync } from "node:child_process";
import type * as Tty from "node:tty";
import type { ExitCode } from "../../../core/errors.js";
import { builtin } from "../../../platform/builtin.js";
import { systemClock } from "../../../platform/clock.js";
import { nodeMacFactory } from "../../../platform/mac.js";
import { actAs } from "../../../platform/privileges.js";
import { syslog } from "../../../platform/syslog.js";
import { authenticateWith } from "../../../services/authenticate.js";
import { userStore } from "../../../services/resolve-account.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";
import { readStdin } from "../stdin.js";

export const help = `Usage: otpgate rstudio-helper --rserver-pam PATH [--secret PATTERN] [--nullok] [--log-socket PATH] -- USER SERVICE REQUIRE

RStudio Server's PAM helper for "password + code in one field": written by
otpgate setup rstudio --factors password+code. Not meant to be run by hand.
`;

/** rserver-pam reads at most 200 bytes. */
const MAX_INPUT = 200;

export async function run(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("rstudio-helper", argv, {
    "rserver-pam": { type: "string" },
    secret: { type: "string" },
    nullok: { type: "boolean" },
    "log-socket": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(help.trimEnd());
    return 0;
  }
  const deadline = setTimeout(() => process.exit(1), 20_000);
  deadline.unref();
  const [user, service = "rstudio", require = "1"] = positionals;
  const log = (level: "info" | "notice" | "err", message: string) =>
    syslog(level, `user=${user ?? "-"} service=${service} helper=rstudio ${message}`, { socket: values["log-socket"] });
  if (!values["rserver-pam"] || !user || positionals.length > 3) {
    log("err", "result=error reason=usage");
    return 2;
  }
  // Like rserver-pam: never read a password from a terminal.
  if (builtin<typeof Tty>("node:tty").isatty(0)) return 1;
  const raw = await readStdin(MAX_INPUT + 1, 10_000);
  if (raw.length > MAX_INPUT) {
    log("notice", "result=rejected reason=oversized-input");
    return 1;
  }
  const entry = raw.toString("latin1");
  raw.fill(0);
  const found = userStore(user, { secret: values.secret });
  if (!found) {
    log("notice", "result=rejected reason=unknown-user");
    return 1;
  }
  const { store, account } = found;
  // The state file is handled with the user's rights; RStudio's rserver-pam then runs as root again.
  const restore = actAs(account.uid, account.gid);
  let outcome;
  try {
    ({ outcome } = await authenticateWith(
      { store, clock: systemClock, macFactory: nodeMacFactory },
      entry,
      { noSkewAdjust: false, noIncrementHotp: false, allowPrefix: true, recordSkewResetCode: true },
      {},
    ));
  } finally {
    restore();
  }
  let password: string;
  if (outcome.kind === "accepted") password = outcome.prefix;
  else if (outcome.kind === "not-enrolled" && values.nullok) password = entry;
  else {
    log("notice", `result=rejected reason=${outcome.kind === "rejected" ? outcome.reason : outcome.kind}`);
    return 1;
  }
  if (password === "") {
    log("notice", "result=rejected reason=no-password");
    return 1;
  }
  const r = spawnSync(values["rserver-pam"], [user, service, require], { input: password, stdio: ["pipe", "ignore", "ignore"], timeout: 15_000 });
  if (r.status !== 0) {
    log("notice", `result=rejected reason=password (rserver-pam exit ${r.status ?? r.signal})`);
    return 1;
  }
  log("info", `result=accepted via=${outcome.kind === "accepted" ? outcome.via : "nullok"}+password`);
  return 0;
}
