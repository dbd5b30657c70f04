// Entry point of the `otpgate` executable.

import { logFields } from "../core/log-fields.js";
import { ROOT_LOGIN_COMMANDS, steeringVariables } from "../core/steering-env.js";
import { main } from "../adapters/cli/main.js";
import { processOutput } from "../adapters/cli/output.js";
import { syslog } from "../platform/syslog.js";

const argv = process.argv.slice(2);

/**
 * Fail closed: as root for a login (pam, rstudio-helper, radius, server, gateway), a variable that steers
 * node (NODE_OPTIONS, NODE_PATH, LD_PRELOAD, NAPI_RS_NATIVE_LIBRARY_PATH, ...) means someone may already have changed what runs
 * here. The PAM line removes them (env -u); finding one anyway, refuse: exit 2, one log line.
 */
function steered(): boolean {
  const command = argv[0] ?? "";
  if (!ROOT_LOGIN_COMMANDS.includes(command) || process.geteuid?.() !== 0) return false;
  const names = steeringVariables(Object.keys(process.env));
  if (names.length === 0) return false;
  const line = `${logFields({ command, result: "refused", reason: "steering-environment", variables: names.join(",") })}: otpgate will not run as root with variables that change what node loads; remove them (run it through env -u NAME ...)`;
  const socket = argv.find((a) => a.startsWith("log_socket="))?.slice("log_socket=".length);
  syslog("err", line, { socket });
  if (command !== "pam") processOutput.err(`otpgate ${command}: ${line}`); // pam_exec discards it
  return true;
}

if (steered()) process.exitCode = 2;
else {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    () => {
      process.exitCode = 2;
    },
  );
}
