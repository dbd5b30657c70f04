// Brute-force regulation an attacker cannot turn against a user. Each attempt names a subject (a
// validated user name, or an invitation) and the client's address key (IPv6 already cut to /64):
//   - failures per (subject, address) and per address BAN: more than `maxRetries` within
//     `findTimeMs` bans that key for `banTimeMs`;
//   - failures per subject across all addresses only SLOW: from `maxRetries` failures on, every
//     attempt for the subject waits USER_DELAY_BASE_MS, doubling per further failure, at most
//     `userDelayMaxMs`. The owner is never locked out: six wrong codes from six addresses, then
//     the right code from a seventh address, is accepted after the delay;
//   - an attempt refused as banned is not counted and does not extend the ban;
//   - a success clears the subject's counters (not the address's: an attacker cannot wash their
//     address clean by signing in to their own account between guesses).
// Memory is bounded: one counter (count, window start, ban end) per key in a least-recently-used
// map of at most `maxEntries` keys; each attempt does a constant number of map operations (no
// scans, no per-key lists). Under a flood from more distinct addresses than the map holds, the
// least recently used keys (and their bans) are forgotten first. Pure: the caller passes the time.

import { OtpgateError } from "../errors.js";
import { addressKey, parseIp } from "./client-address.js";

export interface RegulationPolicy {
  readonly maxRetries: number;
  readonly findTimeMs: number;
  readonly banTimeMs: number;
}

export interface RegulatorPolicy extends RegulationPolicy {
  /** Longest delay for a subject's attempts after failures from anywhere. */
  readonly userDelayMaxMs: number;
  /** Most keys remembered; the least recently used are forgotten first. */
  readonly maxEntries: number;
}

export const DEFAULT_REGULATION: RegulatorPolicy = { maxRetries: 5, findTimeMs: 2 * 60_000, banTimeMs: 5 * 60_000, userDelayMaxMs: 10_000, maxEntries: 100_000 };

/** The first delay once a subject has `maxRetries` failures; it doubles with each further one. */
export const USER_DELAY_BASE_MS = 250;

/** Longest subject or address key accepted (callers validate names first; this is the backstop). */
export const MAX_REGULATION_KEY = 320;

/** Who an attempt is for and where it comes from. */
export interface Attempt {
  /** "user:NAME" for a validated user name, "invite:ID" for an invitation, … */
  readonly subject: string;
  /** The client address as a key (addressKey(): IPv6 cut to its /64). */
  readonly address: string;
}

export type Admission =
  /** Refused without counting: the (subject, address) pair or the address is banned. */
  | { readonly kind: "banned"; readonly key: "pair" | "address"; readonly retryAfterMs: number }
  /** Go ahead after waiting `delayMs` (0 unless the subject failed often recently). */
  | { readonly kind: "allowed"; readonly delayMs: number };

/** The address part of an attempt: addressKey() (IPv4 as is, IPv6 by its /64); no address at all (a peer the shell could not name) counts as "unknown". */
export function attemptAddress(clientAddress: string): string {
  return parseIp(clientAddress) ? addressKey(clientAddress) : "unknown";
}

/** A subject or address that must never become a key (too long, control characters). */
export class RegulationKeyError extends OtpgateError {}

interface Counter {
  count: number;
  windowStart: number;
  bannedUntil: number;
}

function checkKey(what: string, value: string): void {
  if (value === "" || value.length > MAX_REGULATION_KEY || /[\u0000-\u001f\u007f-\u009f]/.test(value)) {
    throw new RegulationKeyError(`a ${what} of ${value.length} characters cannot be a regulation key (empty, longer than ${MAX_REGULATION_KEY} or with control characters); validate it first`);
  }
}

// Keys of the three counters; "\u0000" cannot occur in a checked subject or address.
const pairCounter = (a: Attempt) => `p\u0000${a.subject}\u0000${a.address}`;
const addressCounter = (address: string) => `a\u0000${address}`;
const subjectCounter = (subject: string) => `s\u0000${subject}`;

export class Regulator {
  private readonly entries = new Map<string, Counter>();

  constructor(readonly policy: RegulatorPolicy = DEFAULT_REGULATION) {
    if (!(policy.maxEntries >= 3)) throw new RangeError("regulation.maxEntries must be at least 3");
  }

  /** Keys remembered now (at most policy.maxEntries). */
  get size(): number {
    return this.entries.size;
  }

  /** May this attempt go ahead, and after how long? Changes nothing. */
  admit(attempt: Attempt, now: number): Admission {
    checkKey("subject", attempt.subject);
    checkKey("address", attempt.address);
    const pair = this.banLeft(pairCounter(attempt), now);
    if (pair > 0) return { kind: "banned", key: "pair", retryAfterMs: pair };
    const address = this.banLeft(addressCounter(attempt.address), now);
    if (address > 0) return { kind: "banned", key: "address", retryAfterMs: address };
    return { kind: "allowed", delayMs: this.delayFor(this.current(subjectCounter(attempt.subject), now)) };
  }

  /**
   * Count a failed attempt that was admitted. Returns which keys it banned. An attempt made
   * while banned (which admit() refused) must not be passed here; if it is, it is not counted.
   */
  fail(attempt: Attempt, now: number): { readonly banned: readonly ("pair" | "address")[] } {
    checkKey("subject", attempt.subject);
    checkKey("address", attempt.address);
    if (this.banLeft(pairCounter(attempt), now) > 0 || this.banLeft(addressCounter(attempt.address), now) > 0) return { banned: [] };
    const banned: ("pair" | "address")[] = [];
    if (this.count(pairCounter(attempt), now, true)) banned.push("pair");
    if (this.count(addressCounter(attempt.address), now, true)) banned.push("address");
    this.count(subjectCounter(attempt.subject), now, false);
    return { banned };
  }

  /** An attempt with no usable subject (a malformed form): only its address's ban matters. */
  admitAddress(address: string, now: number): Admission {
    checkKey("address", address);
    const left = this.banLeft(addressCounter(address), now);
    return left > 0 ? { kind: "banned", key: "address", retryAfterMs: left } : { kind: "allowed", delayMs: 0 };
  }

  /** Count a failure against the address alone (a malformed form, a lookup that did not answer): it guessed nothing about a user. */
  failAddress(address: string, now: number): { readonly banned: readonly "address"[] } {
    checkKey("address", address);
    const key = addressCounter(address);
    if (this.banLeft(key, now) > 0) return { banned: [] };
    return { banned: this.count(key, now, true) ? ["address"] : [] };
  }

  /** A success clears the subject's counters: its pair with this address and its slow-down. */
  succeed(attempt: Attempt): void {
    this.entries.delete(pairCounter(attempt));
    this.entries.delete(subjectCounter(attempt.subject));
  }

  /** The delay a subject's attempts get now (for tests and the log). */
  delayOf(subject: string, now: number): number {
    return this.delayFor(this.current(subjectCounter(subject), now));
  }

  private delayFor(failures: number): number {
    const over = failures - this.policy.maxRetries;
    if (over < 0) return 0;
    return Math.min(this.policy.userDelayMaxMs, USER_DELAY_BASE_MS * 2 ** Math.min(over, 30));
  }

  private banLeft(key: string, now: number): number {
    const e = this.entries.get(key);
    return e && e.bannedUntil > now ? e.bannedUntil - now : 0;
  }

  /** Failures of `key` in its current window (0 when the window has passed). */
  private current(key: string, now: number): number {
    const e = this.entries.get(key);
    return e && now - e.windowStart < this.policy.findTimeMs ? e.count : 0;
  }

  /** One more failure for `key`; true when it bans the key now. Moves the key to the young end. */
  private count(key: string, now: number, bans: boolean): boolean {
    let e = this.entries.get(key);
    if (e) this.entries.delete(key);
    else e = { count: 0, windowStart: now, bannedUntil: 0 };
    if (now - e.windowStart >= this.policy.findTimeMs) {
      e.count = 0;
      e.windowStart = now;
    }
    e.count++;
    let bannedNow = false;
    if (bans && e.count > this.policy.maxRetries) {
      e.bannedUntil = now + this.policy.banTimeMs;
      e.count = 0;
      e.windowStart = now;
      bannedNow = true;
    }
    this.entries.set(key, e);
    if (this.entries.size > this.policy.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    return bannedNow;
  }
}
