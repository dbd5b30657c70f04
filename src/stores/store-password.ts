// The gateway's database password (store_password_file, issue 11): a private file of the user the
// gateway runs as, read before the database is asked; never argv, never the URL, never logged.

import { ConfigError } from "../core/errors.js";
import { readPrivateFile } from "../platform/private-file.js";

const MAX_PASSWORD_FILE = 4096;

/** The password file's first line; a private file of the effective user (0600 or stricter, no symlink). */
export function readStorePassword(path: string): string {
  const euid = process.geteuid?.() ?? 0;
  const file = readPrivateFile(path, {
    what: "the gateway's database password",
    maxBytes: MAX_PASSWORD_FILE,
    minBytes: 1,
    ownerUid: euid,
    allowedMode: 0o600,
    follow: false,
    explain: (problem) => {
      if (problem === "symlink") return `store_password_file ${path} is a symbolic link; give the file itself`;
      if (problem === "owner") return `store_password_file ${path} must be owned by uid ${euid}, the user the gateway runs as: chown ${euid} ${path}`;
      if (problem === "mode") return `store_password_file ${path} must not be readable or writable by others (it holds the database password): chmod 600 ${path}`;
      if (problem === "empty") return `store_password_file ${path} is empty; write the database password on its first line`;
      return undefined;
    },
  });
  if (!file) throw new ConfigError(`store_password_file ${path} does not exist; write the database password on its first line (chmod 600, owned by the gateway's user)`);
  const line = file.bytes.toString("utf8").split(/\r?\n/)[0] ?? "";
  if (line === "") throw new ConfigError(`store_password_file ${path} has an empty first line; write the database password there`);
  return line;
}

/** The password of `store_password_file`, or undefined when none is configured. */
export const storePasswordOf = (config: { readonly storePasswordFile: string | null }): string | undefined =>
  config.storePasswordFile === null ? undefined : readStorePassword(config.storePasswordFile);
