// Environment variables that steer what a Node process loads or does before and besides
// otpgate's own code: a root process started from a PAM stack (otpgate pam), by rserver
// (rstudio-helper), as the RADIUS daemon or as the web gateway must not run with any of them. Only names are
// reported, never values (they may be a user's).

/** Commands that run as root on behalf of logins, and refuse a steering environment. */
export const ROOT_LOGIN_COMMANDS: readonly string[] = ["pam", "rstudio-helper", "radius", "server", "gateway"];

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

/**
 * Prefixes and suffixes: the dynamic loader's LD_*; napi-rs bindings such as @node-rs/argon2 load
 * the shared object named by NAPI_RS_NATIVE_LIBRARY_PATH (or a WASI build with NAPI_RS_FORCE_WASI),
 * and other bindings use the same *_NATIVE_LIBRARY_PATH convention.
 */
const steersByPattern = (name: string) => name.startsWith("LD_") || name.startsWith("NAPI_RS_") || name.endsWith("_NATIVE_LIBRARY_PATH");

/** The names among `names` that steer node (the dynamic loader's LD_* included), sorted. */
export function steeringVariables(names: Iterable<string>): string[] {
  const found: string[] = [];
  for (const name of names) if (EXACT.has(name) || steersByPattern(name)) found.push(name);
  return found.sort();
}
