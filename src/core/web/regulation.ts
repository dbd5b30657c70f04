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
// Attempts in flight (red team 2, F1): a sign-in awaits (slow-down, lookup, password, state file)
// between its admission and its result, so parallel requests would all be admitted before the
// first failure is counted. begin() therefore reserves the attempt before any await: it is counted
// as in flight for its pair, address and subject and settled exactly once (a failure, an
// address-only failure, a refund, or a success). An attempt is admitted only while the failures
// already counted plus those in flight stay within `maxRetries` + 1 for the pair and for the
// address (parallel requests get exactly the guesses sequential ones get), and at most
// MAX_IN_FLIGHT_PAIR / MAX_IN_FLIGHT_ADDRESS / MAX_IN_FLIGHT_SUBJECT are in flight at once;
// the rest are refused as "busy", not counted.
// Per-subject pacing (F2): once a subject is slowed, its attempts from all addresses together are
// admitted at least the current delay apart; the rest are refused as "slow", not counted. So
// guessing against one user across any number of addresses is bounded by the delay (at
// `userDelayMaxMs` = 10 s: 6 a minute, 8,640 a day, the rate of the reference RATE_LIMIT 3 30).
// The owner is not paced out by an attacker holding these per-subject limits (red team RT-B, F2):
// an attempt that carries a device the subject signed in with (Attempt.device: the caller vouches
// for it, e.g. a valid device cookie for this subject, OWASP "device cookies") is exempt from the
// subject's in-flight cap and pacing. It still has its own pair and address limits and bans, and
// a small failure budget of its own, so a stolen device is no guessing licence: after `maxRetries`
// failures with a device since its last success (counting those in flight; no time window, so
// spacing guesses out does not refill it), it stops exempting until `banTimeMs` after the last. Devices are counted in a map of their own (at most
// MAX_DEVICES), apart from the LRU attackers feed: only a successful sign-in makes a device, so a
// flood of addresses cannot evict them, and nothing about the exemption lives in memory only (the
// device cookie carries it across restarts and instances). Without a device, pacing applies:
// from a new browser the owner may be asked to wait a few seconds while an attack is going on,
// and is never banned.
// The slow-down itself lasts while failures keep coming: it ends `findTimeMs` after the last one.
// Memory is bounded: one counter (count, window start, ban end) per key in a least-recently-used
// map of at most `maxEntries` keys; each attempt does a constant number of map operations (no
// scans, no per-key lists). Under a flood from more distinct addresses than the map holds, the
// least recently used keys (and their bans) are forgotten first. Pure: the caller passes the time.

import { OtpgateError } from "../errors.js";
import { addressKey, isUnknownClientKey, parseIp } from "./client-address.js";

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

/** At most this many attempts of one (subject, address) pair in flight: each sees the result of the one before. */
export const MAX_IN_FLIGHT_PAIR = 1;
/** At most this many attempts from one address in flight (this also bounds its share of the password-check queue). */
export const MAX_IN_FLIGHT_ADDRESS = 4;
/** At most this many attempts for one subject in flight without an exempting device. */
export const MAX_IN_FLIGHT_SUBJECT = 4;
/** Most devices whose failures are remembered (their own map: only holders of a valid device make entries). */
export const MAX_DEVICES = 10_000;
/** A device id as callers pass it (random, base64url). */
const DEVICE_ID = /^[A-Za-z0-9_-]{16,64}$/;

/** Who an attempt is for and where it comes from. */
export interface Attempt {
  /** "user:NAME" for a validated user name, "invite:ID" for an invitation, … */
  readonly subject: string;
  /** The client address as a key (addressKey(): IPv6 cut to its /64). */
  readonly address: string;
  /**
   * A device the subject signed in with, as the caller vouches for it (a valid device cookie for
   * this subject, or the decision service's own device token): exempt from the subject's pacing
   * and in-flight cap while the device's own failure budget lasts. 16-64 base64url characters.
   */
  readonly device?: string | undefined;
}

export type Admission =
  /** Refused without counting: the (subject, address) pair or the address is banned. */
  | { readonly kind: "banned"; readonly key: "pair" | "address"; readonly retryAfterMs: number }
  /** Go ahead after waiting `delayMs` (0 unless the subject failed often recently). */
  | { readonly kind: "allowed"; readonly delayMs: number };

/** begin()'s answer: refused (banned, busy, slow), or admitted with the ticket to settle exactly once. */
export type Reservation =
  | { readonly kind: "banned"; readonly key: "pair" | "address"; readonly retryAfterMs: number }
  /** Refused without counting: too many attempts of this pair, address or subject already in flight. */
  | { readonly kind: "busy"; readonly key: "pair" | "address" | "subject" }
  /** Refused without counting: the subject is slowed and its last attempt began less than the delay ago. */
  | { readonly kind: "slow"; readonly retryAfterMs: number }
  | { readonly kind: "allowed"; readonly delayMs: number; readonly ticket: Ticket };

/** An admitted attempt in flight; settle() it exactly once. */
export interface Ticket {
  readonly attempt: Attempt;
  /** Carried a device with failure budget left: exempt from the subject's in-flight cap and pacing. */
  readonly exempt: boolean;
  settled: boolean;
}

/** How an attempt in flight ended: a guess (pair, address, subject), an address-only failure, no count at all, or a success. */
export type Settlement = "guess" | "address" | "refund" | "success";

/**
 * The address part of an attempt: addressKey() (IPv4 as is, IPv6 by its /64); a per-request key of
 * unknownClientKey() (a trusted proxy did not say who the client is) as it is; no address at all (a
 * peer the shell could not name) counts as "unknown".
 */
export function attemptAddress(clientAddress: string): string {
  if (parseIp(clientAddress)) return addressKey(clientAddress);
  return isUnknownClientKey(clientAddress) ? clientAddress : "unknown";
}

/** A subject or address that must never become a key (too long, control characters). */
export class RegulationKeyError extends OtpgateError {}

interface Counter {
  count: number;
  /** Start of the window (pair, address); time of the last failure (subject: the slow-down lasts while failures come). */
  windowStart: number;
  /** End of a ban (a device: of its lockout). */
  bannedUntil: number;
  /** Subject only: when its last paced (not exempt) attempt was admitted. */
  lastStart?: number;
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
const deviceCounter = (a: Attempt) => (a.device === undefined ? null : `d\u0000${a.subject}\u0000${a.device}`);

/**
 * A ban as other instances learn of it (the gateway's shared state, issue 11): the (subject,
 * address) pair or the address alone, banned until `until` (Unix ms).
 */
export type Ban =
  { readonly kind: "pair"; readonly subject: string; readonly address: string; readonly until: number } | { readonly kind: "address"; readonly address: string; readonly until: number };

export class Regulator {
  private readonly entries = new Map<string, Counter>();
  /** Failures per (subject, device), apart from `entries`: attackers without a device cannot evict them. */
  private readonly devices = new Map<string, Counter>();
  /** Attempts in flight per key (pair, address and subject keys); only keys with some in flight. */
  private readonly inFlight = new Map<string, number>();

  /**
   * `onBan`: told of every ban this regulator decides (not of those given to applyBan), so they can
   * be published to other instances; it must not throw (an exception is swallowed).
   */
  constructor(
    readonly policy: RegulatorPolicy = DEFAULT_REGULATION,
    private readonly onBan: ((ban: Ban) => void) | null = null,
  ) {
    if (!(policy.maxEntries >= 3)) throw new RangeError("regulation.maxEntries must be at least 3");
  }

  /**
   * A ban decided elsewhere (another instance): refused like one decided here until `until`; a
   * longer ban already in force is kept. Keys are checked like an attempt's; not passed to onBan.
   */
  applyBan(ban: Ban, now: number): void {
    checkKey("address", ban.address);
    if (ban.kind === "pair") checkKey("subject", ban.subject);
    if (!(ban.until > now)) return;
    const key = ban.kind === "pair" ? pairCounter({ subject: ban.subject, address: ban.address }) : addressCounter(ban.address);
    const e = this.entries.get(key);
    if (e && e.bannedUntil >= ban.until) return;
    if (e) this.entries.delete(key);
    // The failures counted so far here are kept apart: the ban ends them as a ban decided here would.
    this.entries.set(key, { count: 0, windowStart: now, bannedUntil: ban.until });
    this.trim();
  }

  /** Keys remembered now (at most policy.maxEntries). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Reserve an attempt before anything is awaited: refused (banned, busy, slow: nothing counted or
   * changed), or admitted, counted as in flight, with a ticket to settle() exactly once.
   */
  begin(attempt: Attempt, now: number): Reservation {
    checkKey("subject", attempt.subject);
    checkKey("address", attempt.address);
    if (attempt.device !== undefined && !DEVICE_ID.test(attempt.device)) throw new RegulationKeyError("a device id must be 16-64 base64url characters");
    const pair = pairCounter(attempt);
    const address = addressCounter(attempt.address);
    const subject = subjectCounter(attempt.subject);
    const device = deviceCounter(attempt);
    const pairBan = this.banLeft(pair, now);
    if (pairBan > 0) return { kind: "banned", key: "pair", retryAfterMs: pairBan };
    const addressBan = this.banLeft(address, now);
    if (addressBan > 0) return { kind: "banned", key: "address", retryAfterMs: addressBan };
    const max = this.policy.maxRetries;
    if (this.flying(pair) >= MAX_IN_FLIGHT_PAIR || this.current(pair, now) + this.flying(pair) > max) return { kind: "busy", key: "pair" };
    if (this.flying(address) >= MAX_IN_FLIGHT_ADDRESS || this.current(address, now) + this.flying(address) > max) return { kind: "busy", key: "address" };
    const exempt = device !== null && this.deviceBudget(device, now) > 0;
    const delayMs = this.delayFor(this.current(subject, now));
    if (!exempt) {
      if (this.flying(subject) >= MAX_IN_FLIGHT_SUBJECT) return { kind: "busy", key: "subject" };
      const e = this.entries.get(subject);
      if (delayMs > 0 && e?.lastStart !== undefined && now - e.lastStart < delayMs) return { kind: "slow", retryAfterMs: e.lastStart + delayMs - now };
      if (delayMs > 0 && e) e.lastStart = now;
    }
    for (const key of exempt ? [pair, address, subject, device!] : [pair, address, subject]) this.inFlight.set(key, this.flying(key) + 1);
    return { kind: "allowed", delayMs, ticket: { attempt, exempt, settled: false } };
  }

  /** After the slow-down: is the admitted attempt's pair or address banned now (by attempts that ended meanwhile)? Changes nothing. */
  recheck(ticket: Ticket, now: number): Admission {
    const pair = this.banLeft(pairCounter(ticket.attempt), now);
    if (pair > 0) return { kind: "banned", key: "pair", retryAfterMs: pair };
    const address = this.banLeft(addressCounter(ticket.attempt.address), now);
    if (address > 0) return { kind: "banned", key: "address", retryAfterMs: address };
    return { kind: "allowed", delayMs: 0 };
  }

  /** End an attempt in flight: count it as `how` says. A second settle of the same ticket does nothing. */
  settle(ticket: Ticket, now: number, how: Settlement): { readonly banned: readonly ("pair" | "address")[] } {
    if (ticket.settled) return { banned: [] };
    ticket.settled = true;
    const a = ticket.attempt;
    const device = deviceCounter(a);
    for (const key of [pairCounter(a), addressCounter(a.address), subjectCounter(a.subject), ...(ticket.exempt ? [device!] : [])]) {
      const n = this.flying(key) - 1;
      if (n > 0) this.inFlight.set(key, n);
      else this.inFlight.delete(key);
    }
    if (how === "guess") {
      // A guess spends the device's budget only when the device exempted it (while locked out it is a client like any other).
      if (ticket.exempt) this.failDevice(device!, now);
      return this.fail(a, now);
    }
    if (how === "address") return this.failAddress(a.address, now);
    if (how === "success") {
      this.succeed(a);
      // The right code with this device: its failures (and a lockout a thief caused) are over.
      if (device !== null) this.devices.delete(device);
    }
    return { banned: [] };
  }

  /** Attempts in flight now (for tests and metrics). */
  get attemptsInFlight(): number {
    let n = 0;
    for (const [key, count] of this.inFlight) if (key.startsWith("a\u0000")) n += count;
    return n;
  }

  /** May this attempt go ahead, and after how long? Changes nothing (no reservation: only for checks with no await before their result). */
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
    // A per-request key (a client a trusted proxy did not name) is never seen again: counting it would
    // only fill the table and push real bans out (RT-C F3). Its user's slow-down still counts.
    if (!isUnknownClientKey(attempt.address)) {
      if (this.count(pairCounter(attempt), now, true)) banned.push("pair");
      if (this.count(addressCounter(attempt.address), now, true)) banned.push("address");
    }
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
    if (isUnknownClientKey(address)) return { banned: [] }; // a per-request key: see fail()
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

  /** Exempt attempts the device may still start now: 0 while locked out, else maxRetries less its failures since its last success and those in flight. */
  private deviceBudget(key: string, now: number): number {
    const e = this.devices.get(key);
    if (e && e.bannedUntil > now) return 0;
    return this.policy.maxRetries - (e?.count ?? 0) - this.flying(key);
  }

  /** One more failure with an exempting device; the `maxRetries`th since its last success locks it out for `banTimeMs`. */
  private failDevice(key: string, now: number): void {
    let e = this.devices.get(key);
    if (e) this.devices.delete(key);
    else e = { count: 0, windowStart: now, bannedUntil: 0 };
    e.windowStart = now;
    e.count++;
    if (e.count >= this.policy.maxRetries) {
      e.bannedUntil = now + this.policy.banTimeMs;
      e.count = 0;
      e.windowStart = now;
    }
    this.devices.set(key, e);
    while (this.devices.size > MAX_DEVICES) this.devices.delete(this.devices.keys().next().value as string);
  }

  /** Is the subject's device locked out now (for tests and the log)? */
  deviceLockedOut(subject: string, device: string, now: number): boolean {
    const e = this.devices.get(`d\u0000${subject}\u0000${device}`);
    return e !== undefined && e.bannedUntil > now;
  }

  private flying(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }

  private trim(): void {
    while (this.entries.size > this.policy.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
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

  /** Failures of `key` in its current window (0 when the window has passed; a subject's window restarts with each failure). */
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
    // A subject's slow-down lasts while failures keep coming: its window restarts with each one.
    if (!bans) e.windowStart = now;
    let bannedNow = false;
    if (bans && e.count > this.policy.maxRetries) {
      e.bannedUntil = now + this.policy.banTimeMs;
      e.count = 0;
      e.windowStart = now;
      bannedNow = true;
    }
    this.entries.set(key, e);
    this.trim();
    if (bannedNow) this.publish(key, e.bannedUntil);
    return bannedNow;
  }

  /** Tell onBan of a ban decided here (the key names its kind, subject and address). */
  private publish(key: string, until: number): void {
    if (!this.onBan) return;
    const [kind, a, b] = key.split("\u0000");
    try {
      if (kind === "p") this.onBan({ kind: "pair", subject: a!, address: b!, until });
      else if (kind === "a") this.onBan({ kind: "address", address: a!, until });
    } catch {
      // publishing is best effort: the ban holds here whatever happens to it
    }
  }
}
