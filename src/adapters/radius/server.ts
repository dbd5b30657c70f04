// The RADIUS request pipeline, cheapest checks first, so that packets nobody with the shared
// secret sent cost microseconds and change nothing:
//   0. with a clients file (--clients-file): the source address picks the client and its secret
//      (most specific prefix); a source no line contains is dropped and counted, nothing parsed;
//   1. size and code, then token buckets per source address:port (a socket that floods is cut off)
//      and, for addresses other than loopback (--allow-remote), per address;
//   2. a re-sent request (same source, id, authenticator) gets the answer already given; any other
//      packet with a request authenticator seen before (a captured request replayed from another
//      source port or address, or with its User-Name changed) is dropped: the authenticators of
//      decided requests are remembered for REPLAY_MEMORY_MS, longer than any code window plus a
//      rate-limit interval, so a request is never decided or counted twice, whatever its source;
//   3. a client of the clients file must sign its request (Message-Authenticator, no exception);
//      a client that is not local (by default: not on loopback) must sign its request with RFC 3579's
//      Message-Authenticator (BlastRADIUS, CVE-2024-3596): without one it is dropped, unless the
//      server admits legacy clients (--allow-legacy-clients, warned about at start and in the log);
//      pam_radius_auth 2.0.0 on loopback sends none and keeps working. Every answer carries one;
//   4. parse and authenticate: a Message-Authenticator that does not verify, or a User-Password
//      that does not decode to a 6-8 digit code (what a forged request decodes to), is dropped
//      before any user lookup, lock or state change; such drops are logged at a bounded rate per
//      source address (on loopback every local user shares 127.0.0.1, so an address is never
//      blocked as a whole: that would let one user shut out pam_radius_auth);
//   5. a bounded number of decisions at a time; the user lookup is asynchronous and cached;
//   6. the decision, decideLogin as for otpgate pam (nullok and skew through the factors); every rejection is answered at the same
//      time after the request arrived (a floor), so a known and an unknown user look alike.
// No I/O of its own: sending, lookups, stores, clock and log are passed in, so it is tested in-process.

import { nodeMacFactory } from "../../platform/mac.js";
import type { AccountStore, Clock } from "../../ports/index.js";
import { logOf, type LoginDecision } from "../../services/login.js";
import { decideResident } from "../../services/resident-decision.js";
import type { RadiusClients } from "./clients.js";
import type { RadiusLog } from "./log.js";
import { ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_REQUEST, buildResponse, parseAccessRequest, RadiusError, requestHasMessageAuthenticator, type AccessRequest } from "./packet.js";
import { Throttle } from "./throttle.js";

export interface RadiusServerDeps<A> {
  /** The shared secret of local clients (pam_radius_auth); null: only the clients file's clients. */
  readonly secret: Buffer | null;
  /**
   * Network clients (--clients-file): a source listed here is answered with its own secret and
   * must send Message-Authenticator. With a clients file, `secret` serves local sources only and
   * every other source is dropped unread.
   */
  readonly clients?: Pick<RadiusClients, "clientOf"> | undefined;
  readonly send: (packet: Buffer, port: number, address: string) => void;
  readonly lookup: (name: string) => Promise<A | null | "busy">;
  /** The account's store; `code` is the entry being decided (the fleet store needs it). */
  readonly storeFor: (account: A, code: string) => AccountStore & { readonly path?: string };
  /** Told of every decision (the fleet's audit table). */
  readonly audit?: ((entry: { readonly user: string; readonly service: string; readonly clientAddress: string; readonly decision: LoginDecision }) => void) | undefined;
  readonly clock: Clock;
  readonly log: RadiusLog;
  readonly nullok: boolean;
  readonly noSkewAdjust: boolean;
  /** Every rejection is sent this long after its request arrived (default 100 ms). */
  readonly rejectFloorMs?: number;
  readonly maxInFlight?: number;
  /** Which source addresses count as local (may send without Message-Authenticator); default loopback. */
  readonly isLocal?: (address: string) => boolean;
  /** Admit requests without Message-Authenticator from clients that are not local (old RADIUS clients). */
  readonly allowLegacyClients?: boolean;
}

export interface Source {
  readonly address: string;
  readonly port: number;
}

/** Figures for tests and the periodic summary. */
export interface RadiusCounters {
  received: number;
  throttled: number;
  dropped: number;
  decided: number;
  resent: number;
  replayed: number;
  /** Dropped: a client that is not local sent no Message-Authenticator. */
  unsigned: number;
  /** Admitted without Message-Authenticator from a client that is not local (--allow-legacy-clients). */
  legacy: number;
  /** Dropped: the source is in no line of the clients file (and not a local client). */
  unknownClient: number;
}

const ANSWER_TTL_MS = 30_000;
const MAX_ANSWERS = 10_000;
/**
 * How long the authenticator of a decided request is remembered: longer than a code window
 * (WINDOW_SIZE 21 x STEP_SIZE 60 s is about +-10 min) plus a RATE_LIMIT interval as set up by
 * enroll (-R up to 3600 s). Only requests that decode under the shared secret are remembered, so
 * the memory grows with real logins (MAX_REMEMBERED of them; beyond that the oldest are forgotten).
 */
export const REPLAY_MEMORY_MS = 24 * 3600_000;
export const MAX_REMEMBERED = 262_144;

export function radiusServer<A>(deps: RadiusServerDeps<A>) {
  const floorMs = deps.rejectFloorMs ?? 100;
  const maxInFlight = deps.maxInFlight ?? 256;
  const isLocal = deps.isLocal ?? isLoopback;
  // pam_radius_auth uses a new socket per login and sends at most a few packets on it; a RADIUS
  // proxy (with --allow-remote) may send many from one port, hence the generous rate.
  const perSocket = new Throttle({ burst: 200, perSecond: 100, maxKeys: 65_536 });
  // On loopback every local user shares the address, so only remote addresses are limited as a whole.
  const perAddress = new Throttle({ burst: 2000, perSecond: 1000, maxKeys: 65_536 });
  const dropLogs = new Throttle({ burst: 20, perSecond: 1, maxKeys: 4096 });
  const answered = new Map<string, { packet: Buffer; at: number }>();
  const inFlight = new Set<string>();
  /** Request authenticators (16 bytes as latin1) of requests taken for a decision -> when. */
  const seen = new Map<string, number>();
  const counters: RadiusCounters = { received: 0, throttled: 0, dropped: 0, decided: 0, resent: 0, replayed: 0, unsigned: 0, legacy: 0, unknownClient: 0 };

  const drop = (source: Source, reason: string, now: number) => {
    counters.dropped++;
    if (dropLogs.take(source.address, now)) deps.log.write("notice", `drop:${reason}`, { event: "drop", client: `${source.address}:${source.port}`, reason });
  };

  const expire = (now: number) => {
    for (const [k, v] of answered) {
      if (now - v.at <= ANSWER_TTL_MS && answered.size <= MAX_ANSWERS) break;
      answered.delete(k);
    }
    for (const [k, at] of seen) {
      if (now - at <= REPLAY_MEMORY_MS && seen.size <= MAX_REMEMBERED) break;
      seen.delete(k);
    }
  };

  async function decide(
    request: AccessRequest & { readonly messageAuthenticator: boolean },
    source: Source,
    arrived: number,
    secret: Buffer,
    clientName: string | null,
  ): Promise<{ packet: Buffer; delayMs: number } | null> {
    const fields: Record<string, string | number | undefined> = {
      event: "login",
      user: request.user,
      service: request.nasIdentifier,
      rhost: request.callingStationId,
      client: `${source.address}:${source.port}`,
      radiusClient: clientName ?? undefined,
    };
    let accept = false;
    let level: "info" | "notice" | "warning" | "err" = "notice";
    try {
      const decision = await decideResident(
        {
          lookup: deps.lookup,
          storeFor: deps.storeFor,
          clock: deps.clock,
          macFactory: nodeMacFactory,
          decided: deps.audit ? (req, decision) => deps.audit!({ user: req.user, service: req.service, clientAddress: request.callingStationId ?? source.address, decision }) : undefined,
        },
        {
          user: request.user,
          code: request.password,
          service: request.nasIdentifier ?? "radius",
          clientAddress: request.callingStationId,
          factors: { password: false, requirePublickey: false, nullok: deps.nullok, noSkewAdjust: deps.noSkewAdjust, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false },
        },
      );
      if (decision === "busy") {
        drop(source, "lookups-busy", deps.clock.nowMs());
        return null;
      }
      accept = decision.outcome === "accepted";
      const log = logOf(decision, false);
      level = log.level;
      Object.assign(fields, log.fields);
    } catch (err) {
      level = "err";
      Object.assign(fields, { result: "error", detail: (err as Error).message });
    }
    if (!request.messageAuthenticator && clientName === null && !isLocal(source.address)) fields.legacy = "no-message-authenticator";
    const kind = `login:${String(fields.result)}:${String(fields.reason ?? fields.via ?? "")}`;
    counters.decided++;
    deps.log.write(level, kind, fields);
    // Always signed (RFC 3579, BlastRADIUS): a client that checks it is protected whether or not it signs its requests.
    const packet = buildResponse(accept ? ACCESS_ACCEPT : ACCESS_REJECT, request, secret, true);
    return { packet, delayMs: accept ? 0 : Math.max(0, arrived + floorMs - deps.clock.nowMs()) };
  }

  function handle(msg: Buffer, source: Source): void {
    const now = deps.clock.nowMs();
    counters.received++;
    // The client and its secret by source address, before anything else is looked at.
    const client = deps.clients?.clientOf(source.address) ?? null;
    const local = isLocal(source.address);
    const secret = client?.secret ?? (local || deps.clients === undefined ? deps.secret : null);
    if (secret === null) {
      counters.unknownClient++;
      return drop(source, "unknown-client", now);
    }
    if (msg.length < 20 || msg.length > 4096 || msg[0] !== ACCESS_REQUEST) return drop(source, "malformed", now);
    if (!perSocket.take(`${source.address}:${source.port}`, now) || (!local && !perAddress.take(source.address, now))) {
      counters.throttled++;
      return;
    }
    const signed = requestHasMessageAuthenticator(msg);
    if (!signed && client !== null) {
      // The clients file's clients: Message-Authenticator required, no legacy exception.
      counters.unsigned++;
      return drop(source, "no-message-authenticator", now);
    }
    if (!signed && !local) {
      if (!deps.allowLegacyClients) {
        counters.unsigned++;
        return drop(source, "no-message-authenticator", now);
      }
      counters.legacy++;
    }
    const key = `${source.address}:${source.port}:${msg[1]}:${msg.toString("hex", 4, 20)}`;
    expire(now);
    const cached = answered.get(key);
    if (cached) {
      counters.resent++;
      return deps.send(cached.packet, source.port, source.address);
    }
    if (inFlight.has(key)) return;
    const authenticator = msg.toString("latin1", 4, 20);
    if (seen.has(authenticator)) {
      counters.replayed++;
      return drop(source, "replayed", now);
    }
    let request: AccessRequest & { messageAuthenticator: boolean };
    try {
      request = { ...parseAccessRequest(msg, secret), messageAuthenticator: signed };
    } catch (err) {
      return drop(source, err instanceof RadiusError ? err.reason : "malformed", now);
    }
    if (inFlight.size >= maxInFlight) return drop(source, "busy", now);
    inFlight.add(key);
    seen.set(authenticator, now);
    void decide(request, source, now, secret, client?.name ?? null).then((answer) => {
      if (!answer) {
        // Not decided (lookups busy): the client may try again with the same request.
        seen.delete(authenticator);
        return void inFlight.delete(key);
      }
      const send = () => {
        answered.set(key, { packet: answer.packet, at: deps.clock.nowMs() });
        inFlight.delete(key);
        deps.send(answer.packet, source.port, source.address);
      };
      if (answer.delayMs > 0) setTimeout(send, answer.delayMs);
      else send();
    });
  }

  return { handle, counters, takeThrottled: () => perSocket.takeRefused() + perAddress.takeRefused() };
}

export function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127.");
}
