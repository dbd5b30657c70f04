// Interfaces between the pure core and the outside world: time, MACs and account storage.

export type { MacFactory } from "../core/otp.js";

/** Cryptographically secure random bytes. */
export interface Random {
  bytes(count: number): Uint8Array;
}

export interface Clock {
  /** Unix time in milliseconds. */
  nowMs(): number;
}

export type CommitResult = { readonly ok: true } | { readonly ok: false; readonly conflict: true };

/** A state file loaded under its account's exclusive lock; `release` ends the lock. */
export interface LockedAccount {
  readonly text: string;
  /** Opaque version of what was read, checked again by `commit` (compare-and-swap). */
  readonly version: string;
  /** Where it lives, for messages. */
  readonly location: string;
  /** Replace the text if the stored file is still the version that was read. */
  commit(text: string): Promise<CommitResult>;
  release(): Promise<void>;
}

export interface AccountStore {
  /** Lock and load the account; null when it has no state file (not enrolled). */
  acquire(): Promise<LockedAccount | null>;
}
