// The account-selection options shared by the account commands, and opening the account's store.

import type { UserAccount } from "../../../platform/users.js";
import type { DescribedTable } from "../help.js";
import { actAs } from "../../../platform/privileges.js";
import { resolveTarget } from "../../../stores/resolve-account.js";
import { accountStore } from "../../../stores/file-accounts.js";
import type { FileAccountStore } from "../../../stores/file-store.js";

export const ACCOUNT_OPTIONS = {
  secret: { type: "string", short: "s", value: "PATH", help: "state file (default ~/.google_authenticator of the user; ~, ${HOME} and ${USER} are expanded)" },
  user: { type: "string", short: "u", value: "NAME", help: "act on NAME's account (root only for other users)" },
} as const satisfies DescribedTable;

export interface OpenedAccount {
  readonly user: UserAccount;
  readonly store: FileAccountStore;
  /** True when root acts on someone else's account. */
  readonly forOther: boolean;
}

export function openAccount(values: { secret?: string | undefined; user?: string | undefined }): OpenedAccount {
  const euid = process.geteuid?.() ?? 0;
  const target = resolveTarget({ user: values.user, secret: values.secret, euid, cwd: process.cwd() });
  actAs(target.user.uid, target.user.gid);
  // The store acts as the owner for each of its own file sections (stores/file-accounts.ts).
  const store = accountStore(target.user, target.path);
  return { user: target.user, store, forOther: target.user.uid !== euid };
}
