// The user's secret line as the gateway's session checks need it: the account through the
// non-blocking user cache (NSS lookups in a child process, cached), then the state file read as
// its owner, like a login reads it. null: no such user, no state file, or one a login would refuse;
// throws when it cannot tell yet (too many lookups waiting, getent failed, timed out or was killed),
// so the session is checked again later and never ended on it.

import { secretLine } from "../../formats/ga-document.js";
import type { UserCache } from "../../platform/user-cache.js";
import { storeFor } from "../../services/resolve-account.js";
import { StateFileError } from "../../core/errors.js";

/** `users`: UserCache, or any lookup with its answers (the user directory's `lookup`). */
export function createSecretReader(users: Pick<UserCache, "lookup">, stateFiles: string, timeoutMs: number): (user: string) => Promise<string | null> {
  return async (user) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const account = await Promise.race([users.lookup(user), late]).finally(() => clearTimeout(timer));
    if (account === "timeout") throw new Error("the account lookup timed out; checking the session again later");
    // "busy": too many lookups waiting, or getent failed or timed out (an NSS backend down): not "no such user".
    if (account === "busy") throw new Error("the account lookup cannot tell now (busy, or NSS failed); checking the session again later");
    if (account === null) return null;
    try {
      const text = storeFor(account, account.groups, { secret: stateFiles }).peek();
      return text === null ? null : secretLine(text);
    } catch (err) {
      if (err instanceof StateFileError) return null;
      throw err;
    }
  };
}
