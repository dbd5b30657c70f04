// The one place that turns a login name into its state file store (issue 10, "one decision").
// Every front-end and every command that opens a user's ~/.google_authenticator goes through here:
//
//   fileAccounts(options).open(name)                -> StateFile | null       (one-shot: pam, helpers)
//   fileAccountsCached(options, lookup).open(name)  -> Promise<StateFile | null | "unavailable">
//                                                      (resident: server, gateway)
//
// Both `open`s fit services/login.ts LoginDeps.openAccount as they are.
//   accountStore(owner, path, options)              -> FileAccountStore         (a path already resolved)
//
// Every store built here carries `actAs` with the file owner's uid, gid and supplementary groups,
// so a root process switches to the owner for each synchronous file section of the store and back
// (stores/file-store.ts); no caller switches process-wide around an await. `fileOwner` is pam's
// `user=` option: the file belongs to that account (and is opened as it), the login name must still
// be an existing account, and ~ / ${HOME} are not expanded (there is no home to take them from).

import { ConfigError } from "../core/errors.js";
import { groupsOf } from "../platform/groups.js";
import { lookupUserById, lookupUserByName, type UserAccount } from "../platform/users.js";
import { FileAccountStore } from "./file-store.js";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "./secret-path.js";

export interface FileAccountsOptions {
  /** State path pattern (~, ${HOME}, ${USER}); default ~/.google_authenticator. */
  readonly secret?: string | undefined;
  /** Reference `no_strict_owner` when false (default true). */
  readonly strictOwner?: boolean | undefined;
  /** Reference `allowed_perm` (default 0600). */
  readonly allowedPerm?: number | undefined;
  /** Reference `user=`: the account (name, or uid in digits) that owns every file and reads it. */
  readonly fileOwner?: string | undefined;
}

/** The account a file belongs to and is opened as. `groups` default: /etc/group for the name. */
export interface FileOwner {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home?: string | undefined;
  readonly groups?: readonly number[] | undefined;
}

/** The store of the state file at `path` (already expanded), opened as `owner`. */
export function accountStore(owner: FileOwner, path: string, options: Pick<FileAccountsOptions, "strictOwner" | "allowedPerm"> = {}): FileAccountStore {
  return new FileAccountStore({
    path,
    owner: { uid: owner.uid, name: owner.name },
    strictOwner: options.strictOwner ?? true,
    allowedPerm: options.allowedPerm ?? 0o600,
    actAs: { uid: owner.uid, gid: owner.gid, groups: owner.groups ?? groupsOf(owner.name, owner.gid) },
  });
}

/** The state path of login account `user` under `options` (file owner: see fileAccounts). */
export function statePathOf(user: { readonly name: string; readonly home?: string | undefined }, options: FileAccountsOptions): string {
  const home = options.fileOwner !== undefined ? null : user.home || null;
  return expandSecretPath(options.secret ?? DEFAULT_SECRET_SPEC, { name: user.name, home });
}

/** An account's state file: its store and where it lives (a services/login.ts LoginAccount). */
export interface StateFile {
  readonly store: FileAccountStore;
  readonly location: string;
}

function loginAccount(user: FileOwner, owner: FileOwner, options: FileAccountsOptions): StateFile {
  const path = statePathOf(user, options);
  return { store: accountStore(owner, path, options), location: path };
}

function resolveFileOwner(spec: string): UserAccount {
  const owner = /^[0-9]+$/.test(spec) ? lookupUserById(Number(spec)) : lookupUserByName(spec);
  if (!owner) throw new ConfigError(`user=${spec} not found; give an existing account name or uid`);
  return owner;
}

export interface FileAccounts {
  /** The account of `name` (an exact, existing account name), or null when there is none. */
  open(name: string): StateFile | null;
}

/** Synchronous lookups (/etc/passwd, then getent): for one-shot commands such as `otpgate pam`. */
export function fileAccounts(options: FileAccountsOptions = {}): FileAccounts {
  return {
    open(name) {
      const account = lookupUserByName(name);
      if (!account) return null;
      const owner = options.fileOwner !== undefined ? resolveFileOwner(options.fileOwner) : account;
      return loginAccount(account, owner, options);
    },
  };
}

/** What a resident process's cached lookup answers (platform/user-cache.ts UserCache.lookup). */
export type CachedLookup = (name: string) => Promise<(UserAccount & { readonly groups?: readonly number[] }) | null | "busy">;

export interface CachedFileAccounts {
  /** "unavailable": the user database cannot answer now (LDAP down, too many lookups); never "no such user". */
  open(name: string): Promise<StateFile | null | "unavailable">;
}

/**
 * Asynchronous lookups through `lookup` (e.g. UserCache.lookup): for resident processes that
 * must not block. A "busy" lookup answers "unavailable" (decideLogin: outcome "error", reason
 * "unavailable"), never "no such user". With `fileOwner` the owner is looked up the same way.
 */
export function fileAccountsCached(options: FileAccountsOptions, lookup: CachedLookup): CachedFileAccounts {
  return {
    async open(name) {
      const account = await lookup(name);
      if (account === "busy") return "unavailable";
      if (!account) return null;
      let owner: FileOwner = account;
      if (options.fileOwner !== undefined) {
        const found = /^[0-9]+$/.test(options.fileOwner) ? lookupUserById(Number(options.fileOwner)) : await lookup(options.fileOwner);
        if (found === "busy") return "unavailable";
        if (!found) throw new ConfigError(`user=${options.fileOwner} not found; give an existing account name or uid`);
        owner = found;
      }
      return loginAccount(account, owner, options);
    },
  };
}
