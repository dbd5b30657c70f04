// The fleet store of a server that may start before its database can be reached (a host booting
// while the database is down or failing over): opening is retried on demand, at most every
// RETRY_MS, and until it succeeds every operation fails with FleetUnavailable - every login is
// refused (closed by default), the process stays up, and FleetHealth logs the outage once.
// Anything else opening throws (a wrong key file, an older schema) is not retried: the caller
// gets it from the first open and stops with its message. Neither is a refused TLS certificate or
// password at start (a configuration mistake that waiting does not fix): that stops the server
// with what to check. Once running, the same failure is an outage like any other (closed).

import { ConfigError } from "../../core/errors.js";
import { FleetUnavailable, type FleetStore } from "../../ports/fleet.js";
import type { AccountStore } from "../../ports/index.js";

const RETRY_MS = 2000;

export async function deferredFleet(open: () => Promise<FleetStore>, nowMs: () => number, onUnavailable: (err: FleetUnavailable) => void): Promise<FleetStore> {
  let store: FleetStore | null = null;
  let opening: Promise<FleetStore> | null = null;
  let lastTry = 0;
  let lastError: FleetUnavailable | null = null;
  const tryOpen = (): Promise<FleetStore> => {
    if (store) return Promise.resolve(store);
    if (opening) return opening;
    if (lastError && nowMs() - lastTry < RETRY_MS) return Promise.reject(lastError);
    lastTry = nowMs();
    opening = open().then(
      (s) => {
        store = s;
        opening = null;
        return s;
      },
      (err: unknown) => {
        opening = null;
        if (err instanceof FleetUnavailable) lastError = err;
        throw err;
      },
    );
    return opening;
  };
  try {
    await tryOpen();
  } catch (err) {
    if (!(err instanceof FleetUnavailable)) throw err;
    const fix = configProblem(err.message);
    if (fix !== null) throw new ConfigError(`${err.message.replace(/; the login is refused: try again when it is back$/, "")}: ${fix}`);
    onUnavailable(err);
  }
  const get = tryOpen;
  const account = (user: string, entry?: string): AccountStore => ({ acquire: async () => (await get()).account(user, entry).acquire() });
  return {
    account,
    put: async (user, document, mode) => (await get()).put(user, document, mode),
    document: async (user) => (await get()).document(user),
    replaceScratchCodes: async (user, codes) => (await get()).replaceScratchCodes(user, codes),
    remove: async (user) => (await get()).remove(user),
    list: async (user) => (await get()).list(user),
    // A decision made before the store could ever be opened has no audit row (its log line has it).
    audit: (record) => store?.audit(record),
    auditRecords: async (query) => (await get()).auditRecords(query),
    close: async () => {
      if (opening) await opening.catch(() => {});
      await store?.close();
    },
  };
}

/** What to fix when a failure to connect is a configuration mistake (TLS verification, login), else null. */
export function configProblem(message: string): string | null {
  if (/ERR_TLS_CERT_ALTNAME_INVALID|Hostname\/IP does not match/i.test(message))
    return "the database's TLS certificate does not name the host in --store (sslmode=verify-full): use the host name the certificate was issued for";
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|certificate/i.test(message))
    return "the database's TLS certificate was not accepted: sslrootcert= in --store must name the CA file that signed it";
  if (/\b28P01\b|\b28000\b|password authentication failed/i.test(message)) return "the database refused the login: check the user in --store and the password in --db-password-file";
  return null;
}
