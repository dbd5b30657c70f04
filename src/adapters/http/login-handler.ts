// POST PREFIX/login: user name, one-time code and (when password_file is set) a password.
// In this order:
//   1. CSRF, then the form's shape: a user name that fails userNameProblem() (the one rule), a
//      code that is not 6-8 digits or a missing password is refused as malformed and counted
//      against the client's address only: the name never becomes a key anywhere.
//   2. Regulation (core/web/regulation.ts), reserved BEFORE anything is awaited: a banned (user,
//      address) pair or address is refused; so is an attempt beyond the attempts in flight allowed
//      per pair, address and user ("busy") or one that comes sooner than the user's current delay
//      after the previous one from anywhere ("slow down"); none of these is counted. An admitted
//      attempt is in flight until it is settled exactly once (a failure, an address-only failure,
//      a refund, or a success), so parallel requests get no more guesses than sequential ones.
//      It waits the user's slow-down, and the bans are checked again after the wait. An attempt
//      carrying a device cookie for this user (device-cookies.ts: set after each successful
//      sign-in, sealed, 30 days) is exempt from the user's pacing and in-flight cap while that
//      device's own failure budget lasts (red team RT-B, F2: attackers holding the pacing slot
//      cannot shut the owner out, on any instance, after any restart).
//   3. The password (argon2id) when configured, BEFORE anything else is asked about the account: a
//      wrong one never reaches the decision service, so it costs no code and no RATE_LIMIT slot.
//      Names without a line in the password file get verifyNothing() (same time). A full
//      password-check queue is a refusal like any other (floor, counted against the address); an
//      address has at most MAX_IN_FLIGHT_ADDRESS attempts, so queue slots, at once.
//   4. The response that signs the user in (return URL, new session bound to the secret's
//      fingerprint as the decision service reports it now, Set-Cookie, Location) is built
//      completely, and only then is the code decided, by the decision service (otpgate server over
//      decision_socket, or in-process): THE login decision of services/login.ts, code only. Nothing
//      that can fail runs between the code being used and the answer: an error while building the
//      session leaves the code unused, and the bookkeeping after an accepted code (regulation,
//      metrics, log) cannot turn the built answer into an error.
//      Without a password factor the gateway's regulation is the limiter for its network clients,
//      and its code checks neither consume nor honour the state file's RATE_LIMIT (rateLimit:
//      "ignore"): strangers' wrong codes must not use up the RATE_LIMIT that SSH, RStudio and
//      RADIUS share with it. With password_file set, RATE_LIMIT applies as everywhere (only
//      someone who knows the password reaches the code).
//   5. An account lookup that is busy, times out or fails is answered exactly like an unknown user
//      (401 after the floor; counted against the address, not the user); the log keeps the reason.
//      A decision service that cannot be asked (server down, socket gone) is a 503 after the floor,
//      counted against nobody: nothing was checked, and it works again when the service is back.
// Every refusal looks the same to the browser and is answered no earlier than REFUSAL_FLOOR_MS
// after the attempt began (like otpgate pam's floor), so unknown and known users take the same
// time; the log records the real reason.

import { userNameProblem } from "../../core/user-name.js";
import { gatewayCookies } from "./cookie-names.js";
import { createDeviceCookies } from "./device-cookies.js";
import { attemptAddress, safeReturnUrl, type Attempt, type Settlement, type Ticket } from "../../core/web/index.js";
import { isUnknownClientKey } from "../../core/web/client-address.js";
import { headerValue } from "../../core/web/headers.js";
import { PasswordCheckBusy, verifyNothing, verifyPassword } from "../../platform/password-hash.js";
import { DecisionServiceUnavailable, type DecideReply } from "../../ports/decision-service.js";
import { readPasswordFile } from "../../stores/password-file.js";
import type { HandlerContext } from "./gateway-context.js";
import { LookupUnavailable } from "./lookup-unavailable.js";
import type { GatewayRequest, GatewayResponse, HeaderList } from "./gateway-types.js";
import { MAX_FORM } from "./page-kit.js";
import { loginFailure, loginPage, messagePage } from "./pages.js";

/** Every refused sign-in is answered this long after it began, at the earliest. */
export const REFUSAL_FLOOR_MS = 1_000;

const CODE = /^[0-9]{6,8}$/;

type PasswordCheck = "ok" | "wrong" | "no-password" | "busy" | "error";

async function checkPassword(file: string, user: string, password: string): Promise<{ result: PasswordCheck; detail?: string }> {
  try {
    const hash = readPasswordFile(file).get(user);
    if (!hash) {
      await verifyNothing(password); // same time as a real check: no user enumeration by timing
      return { result: "no-password" };
    }
    return { result: (await verifyPassword(hash, password)) ? "ok" : "wrong" };
  } catch (err) {
    if (err instanceof PasswordCheckBusy) return { result: "busy" };
    return { result: "error", detail: (err as Error).message };
  }
}

/** How a refusal is counted: against the user and the address (a guess), the address alone, or not at all (banned, busy, slow). */
type Count = "guess" | "address" | "none";

const SETTLE: Record<Count, Settlement> = { guess: "guess", address: "address", none: "refund" };

export function createLoginHandler(ctx: HandlerContext, options: { refusalFloorMs?: number } = {}): (req: GatewayRequest) => Promise<GatewayResponse> {
  const { config, kit, sessions, regulator, decisions, metrics, log, clock } = ctx;
  const P = config.pagesPrefix;
  const returnPolicy = { allowedHosts: config.allowedHosts, fallback: "/" };
  const withPassword = config.passwordFile !== null;
  const floorMs = options.refusalFloorMs ?? REFUSAL_FLOOR_MS;
  const rateLimit = withPassword ? "apply" : "ignore";
  const unavailable = "The sign-in service is not available right now; nothing was checked. Please try again in a minute.";
  const devices = createDeviceCookies({
    keys: () => sessions.keys(),
    random: ctx.random,
    names: gatewayCookies(config),
    // "Log out everywhere" (and a new secret) ends the user's device cookies issued until then, as it ends sessions.
    endedSince: (name, iat) => sessions.ended({ sid: "", user: name, createdAt: iat, lastSeenAt: iat }),
  });

  return async (req) => {
    const start = clock.nowMs();
    const setCookies: string[] = [];
    if (Number(headerValue(req.headers, "content-length") ?? 0) > MAX_FORM) return kit.page(413, messagePage("Too large", "The form was too large.", P));
    const form = await kit.readForm(req);
    if (!form) return kit.page(413, messagePage("Not accepted", "The form could not be read.", P));
    const rd = safeReturnUrl(form.get("rd"), returnPolicy);
    const ip = ctx.clientAddress(req);
    if (!kit.csrfOk(req, form)) {
      log({ event: "login", result: "rejected", reason: "csrf", ip });
      return kit.page(403, messagePage("Form expired", "The sign-in form expired. Please load it again.", P));
    }
    const user = form.get("user") ?? "";
    const code = form.get("code") ?? "";
    const password = form.get("password") ?? "";
    const address = attemptAddress(ip);
    const nameOk = userNameProblem(user) === null;
    // Shown again in the form and logged only when it passed the one user-name rule (no control characters).
    const shownUser = nameOk ? user : "";
    const withCookies = (headers: HeaderList = []): HeaderList => [...headers, ...setCookies.map((c) => ["set-cookie", c] as const)];
    const formPage = (status: number, error: string) =>
      kit.page(status, loginPage({ prefix: P, csrf: kit.csrfFor(req, setCookies), returnTo: rd, user: shownUser, error, password: withPassword }), withCookies());

    let ticket: Ticket | null = null;
    /** Count (settling the attempt in flight), log, and answer the uniform failure, not before the floor. */
    const refuse = async (reason: string, count: Count, detail?: string, status = 401, message = loginFailure(withPassword)): Promise<GatewayResponse> => {
      const now = clock.nowMs();
      let banned: readonly string[] = [];
      if (ticket) banned = regulator.settle(ticket, now, SETTLE[count]).banned;
      else if (count === "address") banned = regulator.failAddress(address, now).banned;
      metrics.logins_failed++;
      metrics.bans += banned.length;
      log({
        event: "login",
        result: "rejected",
        reason,
        user: shownUser || "-",
        ip,
        ...(detail ? { detail } : {}),
        ...(banned.length ? { banned: banned.join(" ") } : {}),
        ...(ticket?.exempt ? { device: "exempt" } : {}),
      });
      const wait = start + floorMs - clock.nowMs();
      if (wait > 0) await ctx.sleep(wait);
      return formPage(status, message);
    };

    // 1. The form's shape; the name is checked before it becomes a key.
    if (!nameOk || !CODE.test(code) || (withPassword && password === "")) {
      if (regulator.admitAddress(address, start).kind === "banned") return refuse("banned", "none");
      return refuse("malformed", "address");
    }
    // 2. Bans, attempts in flight and the user's pacing: reserved before anything is awaited.
    // A device cookie for this user (sealed, fresh, not logged out everywhere) may exempt it from the user's pacing.
    const device = devices.read(kit.cookies(req), user, start);
    const attempt: Attempt = { subject: `user:${user}`, address, ...(device ? { device: device.id } : {}) };
    const reservation = regulator.begin(attempt, start);
    if (reservation.kind === "banned") return refuse("banned", "none", `ban on the ${reservation.key}`);
    if (reservation.kind === "busy")
      return refuse("busy", "none", `too many attempts in flight for the ${reservation.key}`, 429, "Another sign-in is still being checked. Wait a few seconds, then try again.");
    if (reservation.kind === "slow") {
      const seconds = Math.max(1, Math.ceil(reservation.retryAfterMs / 1000));
      return refuse("slow-down", "none", `retry after ${seconds} s`, 429, `Too many attempts for this user right now. Wait ${seconds} second${seconds === 1 ? "" : "s"}, then try again.`);
    }
    ticket = reservation.ticket;
    try {
      return await admitted(reservation.delayMs);
    } finally {
      // Whatever happened (an exception included), the attempt is no longer in flight.
      regulator.settle(ticket, clock.nowMs(), "refund");
    }

    async function admitted(delayMs: number): Promise<GatewayResponse> {
      if (delayMs > 0) {
        await ctx.sleep(delayMs);
        const again = regulator.recheck(ticket!, clock.nowMs());
        if (again.kind === "banned") return refuse("banned", "none", `ban on the ${again.key} (during the slow-down)`);
      }
      // 3. The password before anything is asked about the account.
      if (withPassword) {
        const check = await checkPassword(config.passwordFile!, user, password);
        if (check.result === "busy") return refuse("password-busy", "address", undefined, 503, "Too many sign-ins at once. Please try again in a minute.");
        if (check.result === "error") return refuse("password-error", "address", check.detail);
        if (check.result !== "ok") return refuse(`password-${check.result}`, "guess");
      }

      // 4. The answer that signs the user in, complete before the code is used.
      let signedIn: GatewayResponse;
      try {
        // The session is bound to the secret as it is before the code is used (a keyed fingerprint):
        // should the secret change (re-enrollment), the session ends at its next check.
        const fingerprint = await sessions.currentFingerprint(user);
        if (fingerprint === null) return refuse("not-enrolled", "guess");
        const issued = sessions.issue(user, start, fingerprint);
        signedIn = kit.page(
          303,
          "",
          withCookies([
            ["location", rd],
            ["set-cookie", ctx.sessionCookie(issued.cookie)],
            // A new device cookie with every sign-in (new id, 30 days from now).
            ["set-cookie", devices.issue(user, start)],
          ]),
        );
      } catch (err) {
        if (err instanceof LookupUnavailable) return refuse(`lookup-${err.reason}`, "address", err.message);
        if (err instanceof DecisionServiceUnavailable) return refuse("decision-service-unavailable", "none", err.message, 503, unavailable);
        // Nothing was used up: the same code still works once this is fixed.
        log({ event: "login", result: "error", reason: "session", user, ip, detail: (err as Error).message });
        return formPage(500, "Signing in failed on the server; your code was not used. Please try again, or tell your administrator.");
      }
      let outcome: DecideReply;
      try {
        // An attempt the device cookie exempted here is exempt at the decision service too (within its budget per user there).
        // A per-request key for a client the proxy did not name is not an address: the server is told none.
        outcome = await decisions.decide({ user, code, service: "gateway", clientAddress: isUnknownClientKey(ip) ? undefined : ip, rateLimit, ...(ticket!.exempt ? { device: true } : {}) });
      } catch (err) {
        if (err instanceof DecisionServiceUnavailable) return refuse("decision-service-unavailable", "none", err.message, 503, unavailable);
        return refuse("error", "address", (err as Error).message);
      }
      if (outcome.outcome === "error") return refuse(outcome.reason, "address");
      if (outcome.outcome !== "accepted") return refuse(outcome.reason, "guess");
      // The code is used: from here on only bookkeeping, none of which may cost the user the login.
      try {
        regulator.settle(ticket!, clock.nowMs(), "success");
        metrics.logins_ok++;
        log({ event: "login", result: "accepted", via: outcome.via, user, ip, ...(ticket!.exempt ? { device: "exempt" } : {}) });
      } catch (err) {
        try {
          log({ event: "login", result: "accepted", via: outcome.via, user, ip, warning: `after the code: ${(err as Error).message}` });
        } catch {
          // The log itself failed; the user still gets the session their code paid for.
        }
      }
      return signedIn;
    }
  };
}
