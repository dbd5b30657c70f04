// The fleet store (issue 11): the users' login state in PostgreSQL, shared by every host's
// `otpgate server`, the admin commands and the gateway. Implemented by stores/pg (node-postgres);
// nothing outside stores/ and the composition roots knows it is SQL.
//
// What it keeps per user is exactly what a ~/.google_authenticator file holds, split so that a
// database dump alone reveals no secret:
//   - the secret: AES-256-GCM under a key from the key file (key id per row; `db rotate-key`);
//   - the emergency codes: keyed digests (HMAC-SHA-256), each usable once;
//   - every other line (the option lines: TOTP/HOTP, digits, step, window, DISALLOW_REUSE with
//     its used steps, RATE_LIMIT with its stamps, TIME_SKEW, HOTP_COUNTER, grace records) as text,
//     in the reference format, so the one pure decision (core/verify.ts) decides on it unchanged.
//
// `account(user, entry)` is an AccountStore (ports/index.ts): acquire() opens a transaction and
// locks the user's row (SELECT ... FOR UPDATE), and presents the state as a reference document:
// the decrypted secret, the option lines, and one 8-digit line per emergency code. The codes are
// digests, so a line shows the real code only when `entry` (the code being decided) matches that
// digest; every other line holds a filler value that is not the entry's code, so it can never be
// accepted, and the count of codes stays right. commit(text) writes the option lines back, and
// deletes the digest of a code the decision used; release() ends the transaction.

import type { AccountStore } from "./index.js";

/** One decision, for the audit table: never a code, secret or password. */
export interface AuditRecord {
  /** Unix time in milliseconds. */
  readonly at: number;
  readonly user: string;
  /** The host whose `otpgate server` decided (os.hostname() unless configured). */
  readonly host: string;
  /** The front-end: "radius", "gateway", ... */
  readonly service: string;
  readonly clientAddress: string | null;
  readonly result: "accepted" | "rejected" | "error";
  /** services/login.ts logOf's reason ("wrong", "replay", "rate-limited", "not-enrolled", ...). */
  readonly reason: string;
  /** How it was accepted ("totp", "scratch", ...) or null. */
  readonly via: string | null;
}

export interface AuditQuery {
  readonly user?: string | undefined;
  /** Unix time in milliseconds: only records at or after it. */
  readonly since?: number | undefined;
  /** Newest first, at most this many (default 1000). */
  readonly limit?: number | undefined;
}

/** An enrolled account as the admin commands list it (no secret, no code). */
export interface FleetAccountSummary {
  readonly user: string;
  /** The option lines, as in the file (no secret, no emergency codes). */
  readonly options: string;
  readonly scratchCodes: number;
  /** The key id that encrypts the secret. */
  readonly keyId: string;
  /** Unix time in milliseconds. */
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What `put` does when the user is already enrolled. */
export type PutMode = "create" | "replace";

export interface FleetStore {
  /** The decision store of `user`; `entry` is the code being decided (see above), none for admin reads. */
  account(user: string, entry?: string): AccountStore;
  /**
   * Store a whole reference document (the secret and emergency codes in the clear, as a file has
   * them: enroll, import, invitation): the secret is encrypted and the codes digested here, in one
   * transaction. "exists": mode "create" and the user is enrolled (nothing changed).
   */
  put(user: string, document: string, mode: PutMode): Promise<"written" | "exists">;
  /**
   * The reference document of `user` for export and QR: the secret decrypted and the option lines;
   * emergency codes cannot be recovered from their digests, so none are in `text` and
   * `scratchCodesOmitted` says how many the account still has. null: not enrolled.
   */
  document(user: string): Promise<{ readonly text: string; readonly scratchCodesOmitted: number } | null>;
  /** Replace the emergency codes (otpgate codes); false: not enrolled. */
  replaceScratchCodes(user: string, codes: readonly number[]): Promise<boolean>;
  /** Delete the account; false: there was none. */
  remove(user: string): Promise<boolean>;
  /** Every enrolled account, by name (or only `user`). */
  list(user?: string): Promise<FleetAccountSummary[]>;
  /** Queue one decision for the audit table (written in batches; never throws, never blocks a login). */
  audit(record: AuditRecord): void;
  /** The audit records, newest first. */
  auditRecords(query: AuditQuery): Promise<AuditRecord[]>;
  /** Flush the audit queue and close the pool. */
  close(): Promise<void>;
}

/** The database cannot be reached or answered too late: refuse the login, try again later. */
export class FleetUnavailable extends Error {
  override name = "FleetUnavailable";
}
