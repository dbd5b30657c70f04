// The gateway's user directory: which account a (validated) login name is, answered without ever
// blocking the event loop. The real one is the UserCache built for the RADIUS server (/etc/passwd
// read asynchronously, other names asked of NSS through a bounded number of `getent` child
// processes, answers cached); every lookup is also cut off after `timeoutMs`, so an LDAP/sssd that
// hangs costs a refused login, not a stalled gateway. Tests pass a fake directory.

import type { CachedAccount, LookupResult } from "../../platform/user-cache.js";
import type { AccountStore } from "../../ports/index.js";

export type { CachedAccount } from "../../platform/user-cache.js";

export type DirectoryAnswer =
  | { readonly kind: "found"; readonly account: CachedAccount }
  | { readonly kind: "unknown" }
  /** No answer in time, too many lookups waiting, or the lookup failed: refuse, try later. */
  | { readonly kind: "unavailable"; readonly reason: "timeout" | "busy" | "error"; readonly detail?: string };

export interface UserDirectory {
  /** The account of a login name that passed userNameProblem(); never throws. */
  find(name: string): Promise<DirectoryAnswer>;
  /** The state-file store of a found account (every file operation with the account's rights). */
  storeOf(account: CachedAccount): AccountStore;
}

export interface UserDirectoryOptions {
  /** UserCache.lookup, or any asynchronous lookup with its answers. */
  readonly lookup: (name: string) => Promise<LookupResult>;
  /** A lookup that has not answered after this long is refused as "timeout". */
  readonly timeoutMs: number;
  /**
   * The state-file store of a found account, opened as the account: built by the composition root
   * (gateway-entry.ts, with stores/file-accounts.ts), never here.
   */
  readonly storeOf: (account: CachedAccount) => AccountStore;
}

export function createUserDirectory(options: UserDirectoryOptions): UserDirectory {
  return {
    async find(name) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), options.timeoutMs);
      });
      try {
        const answer = await Promise.race([options.lookup(name), timeout]);
        if (answer === "timeout") return { kind: "unavailable", reason: "timeout" };
        if (answer === "busy") return { kind: "unavailable", reason: "busy" };
        return answer === null ? { kind: "unknown" } : { kind: "found", account: answer };
      } catch (err) {
        return { kind: "unavailable", reason: "error", detail: err instanceof Error ? err.message : String(err) };
      } finally {
        clearTimeout(timer);
      }
    },
    storeOf: options.storeOf,
  };
}
