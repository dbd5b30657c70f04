// Environment variables that steer what a Node process loads or does before and besides
// otpgate's own code: a root process started from a PAM stack (otpgate pam), by rserver
// (rstudio-helper) or as the RADIUS daemon must not run with any of them. Only names are
// reported, never values (they may be a user's).

/** Commands that run as root on behalf of logins, and refuse a steering environment. */
export const ROOT_LOGIN_COMMANDS: readonly string[] = ["pam", "rstudio-helper", "radius"];

const EXACT = new Set([
  "NODE_OPTIONS", // --require/--import/--loader: code before ours
  "NODE_PATH", // module search path
  "NODE_REPL_EXTERNAL_MODULE",
  "NODE_ICU_DATA",
  "NODE_V8_COVERAGE", // writes files as root
  "NODE_REDIRECT_WARNINGS", // writes files as root
  "NODE_COMPILE_CACHE", // reads and writes compiled code
  "NODE_PRESERVE_SYMLINKS",
  "NODE_CHANNEL_FD", // an IPC channel on an inherited fd
  "NODE_CHANNEL_SERIALIZATION_MODE",
  "NODE_UNIQUE_ID", // cluster worker mode
  "UV_USE_IO_URING",
  "GLIBC_TUNABLES",
  "GCONV_PATH", // iconv modules: shared objects
  "LOCPATH",
  "OPENSSL_CONF", // can load engines and providers (shared objects)
  "OPENSSL_MODULES",
  "OPENSSL_ENGINES",
]);

/** The names among `names` that steer node (the dynamic loader's LD_* included), sorted. */
export function steeringVariables(names: Iterable<string>): string[] {
  const found: string[] = [];
  for (const name of names) if (EXACT.has(name) || name.startsWith("LD_")) found.push(name);
  return found.sort();
}
