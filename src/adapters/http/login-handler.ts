// POST PREFIX/login: user name, one-time code and (when password_file is set) a password.
// In this order:
//   1. CSRF, then the form's shape: a user name that fails userNameProblem() (the one rule), a
//      code that is not 6-8 digits or a missing password is refused as malformed and counted
//      against the client's address only: the name never becomes a key anywhere.
//   2. Regulation (core/web/regulation.ts): a banned (user, address) pair or address is refused
//      without counting; otherwise the attempt waits the user's slow-down (failures from anywhere
//      slow the owner, never lock them out).
//   3. The account, from the user directory: asynchronous, cached, cut off at the lookup timeout
//      (an unknown name costs the same as a known one; see the refusal floor below).
//   4. The password (argon2id) when configured, BEFORE the code: a wrong one never touches the
//      state file, so it costs no code and no RATE_LIMIT slot. Unknown users get verifyNothing().
//   5. The response that signs the user in (return URL, new session, Set-Cookie, Location) is built
//      completely, and only then is the code checked, through the same service and state files as
//      otpgate verify. Nothing that can fail runs between the code being used and the answer: an
//      error while building the session leaves the code unused, and the bookkeeping after an
//      accepted code (regulation, metrics, log) cannot turn the built answer into an error.
// Every refusal looks the same to the browser and is answered no earlier than REFUSAL_FLOOR_MS
// after the attempt began (like otpgate pam's floor), so unknown and known users take the same
// time; the log records the real reason.

import { userNameProblem } from "../../core/user-name.js";
import { attemptAddress, safeReturnUrl, type Attempt } from "../../core/web/index.js";
import { headerValue } from "../../core/web/headers.js";
import { USER_NAME } from "../../core/web/password-entries.js";
import { nodeMacFactory } from "../../platform/mac.js";
import { PasswordCheckBusy, verifyNothing, verifyPassword } from "../../platform/password-hash.js";
import type { AccountStore } from "../../ports/index.js";
import { authenticateWith } from "../../services/authenticate.js";
import { readPasswordFile } from "../../stores/password-file.js";
import type { HandlerContext } from "./gateway-context.js";
import type { GatewayRequest, GatewayResponse, HeaderList } from "./gateway-types.js";
import { MAX_FORM } from "./page-kit.js";
import { loginFailure, loginPage, messagePage } from "./pages.js";

/** Every refused sign-in is answered this long after it began, at the earliest. */
export const REFUSAL_FLOOR_MS = 1_000;

const CODE = /^[0-9]{6,8}$/;

type PasswordCheck = "ok" | "wrong" | "no-password" | "busy" | "error";

async function checkPassword(file: string, user: string, password: string, known: boolean): Promise<{ result: PasswordCheck; detail?: string }> {
  try {
    const hash = known ? readPasswordFile(file).get(user) : undefined;
    if (!hash) {
      await verifyNothing(password); // same time as a real check: no user enumeration by timing
      return { result: known ? "no-password" : "wrong" };
    }
    return { result: (await verifyPassword(hash, password)) ? "ok" : "wrong" };
  } catch (err) {
    if (err instanceof PasswordCheckBusy) return { result: "busy" };
    return { result: "error", detail: (err as Error).message };
  }
}

/** How a refusal is counted: against the user and the address (a guess), the address alone, or not at all (banned). */
type Count = "guess" | "address" | "none";

export function createLoginHandler(ctx: HandlerContext, options: { refusalFloorMs?: number } = {}): (req: GatewayRequest) => Promise<GatewayResponse> {
  const { config, kit, sessions, regulator, users, metrics, log, clock } = ctx;
  const P = config.pagesPrefix;
  const returnPolicy = { allowedHosts: config.allowedHosts, fallback: "/" };
  const withPassword = config.passwordFile !== null;
  const floorMs = options.refusalFloorMs ?? REFUSAL_FLOOR_MS;
  const policy = { noSkewAdjust: true, noIncrementHotp: false, allowPrefix: false, recordSkewResetCode: true } as const;

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
    const shownUser = USER_NAME.test(user) ? user : "";
    const withCookies = (headers: HeaderList = []): HeaderList => [...headers, ...setCookies.map((c) => ["set-cookie", c] as const)];
    const formPage = (status: number, error: string) =>
      kit.page(status, loginPage({ prefix: P, csrf: kit.csrfFor(req, setCookies), returnTo: rd, user: shownUser, error, password: withPassword }), withCookies());

    /** Count, log, and answer the uniform failure, not before the floor. */
    const refuse = async (reason: string, count: Count, attempt: Attempt | null, detail?: string, status = 401, message = loginFailure(withPassword)): Promise<GatewayResponse> => {
      const now = clock.nowMs();
      let banned: readonly string[] = [];
      if (count === "guess" && attempt) banned = regulator.fail(attempt, now).banned;
      else if (count === "address") banned = regulator.failAddress(address, now).banned;
      metrics.logins_failed++;
      metrics.bans += banned.length;
      log({ event: "login", result: "rejected", reason, user: shownUser || "-", ip, ...(detail ? { detail } : {}), ...(banned.length ? { banned: banned.join(" ") } : {}) });
      const wait = start + floorMs - clock.nowMs();
      if (wait > 0) await ctx.sleep(wait);
      return formPage(status, message);
    };

    // 1. The form's shape; the name is checked before it becomes a key.
    if (!nameOk || !CODE.test(code) || (withPassword && password === "")) {
      if (regulator.admitAddress(address, start).kind === "banned") return refuse("banned", "none", null);
      return refuse("malformed", "address", null);
    }
    // 2. Bans and the user's slow-down.
    const attempt: Attempt = { subject: `user:${user}`, address };
    const admission = regulator.admit(attempt, start);
    if (admission.kind === "banned") return refuse("banned", "none", attempt, `ban on the ${admission.key}`);
    if (admission.delayMs > 0) await ctx.sleep(admission.delayMs);
    // 3. The account (asynchronous, with a timeout).
    const found = await users.find(user);
    if (found.kind === "unavailable") {
      return refuse(`lookup-${found.reason}`, "address", attempt, found.detail, 503, "Sign-in is busy right now. Please try again in a minute.");
    }
    // 4. The password before the code.
    if (withPassword) {
      const check = await checkPassword(config.passwordFile!, user, password, found.kind === "found");
      if (check.result === "busy") {
        log({ event: "login", result: "rejected", reason: "busy", user, ip });
        return formPage(503, "Too many sign-ins at once. Please try again in a minute.");
      }
      if (check.result === "error") return refuse("password-error", "address", attempt, check.detail);
      if (check.result !== "ok") return refuse(found.kind === "found" ? `password-${check.result}` : "unknown-user", "guess", attempt);
    }
    if (found.kind !== "found") return refuse("unknown-user", "guess", attempt);

    // 5. The answer that signs the user in, complete before the code is used.
    let signedIn: GatewayResponse;
    let store: AccountStore;
    try {
      store = users.storeOf(found.account);
      // The session is bound to the secret as it is before the code is used (a keyed fingerprint):
      // should the secret change (re-enrollment), the session ends at its next check.
      const fingerprint = await sessions.currentFingerprint(found.account.name);
      if (fingerprint === null) return refuse("not-enrolled", "guess", attempt);
      const issued = sessions.issue(found.account.name, start, fingerprint);
      signedIn = kit.page(303, "", withCookies([["location", rd], ["set-cookie", ctx.sessionCookie(issued.cookie)]]));
    } catch (err) {
      // Nothing was used up: the same code still works once this is fixed.
      log({ event: "login", result: "error", reason: "session", user, ip, detail: (err as Error).message });
      return formPage(500, "Signing in failed on the server; your code was not used. Please try again, or tell your administrator.");
    }
    let outcome;
    try {
      ({ outcome } = await authenticateWith({ store, clock, macFactory: nodeMacFactory }, code, policy, {}));
    } catch (err) {
      return refuse("error", "address", attempt, (err as Error).message);
    }
    if (outcome.kind !== "accepted") return refuse(outcome.kind === "rejected" ? outcome.reason : outcome.kind, "guess", attempt);
    // The code is used: from here on only bookkeeping, none of which may cost the user the login.
    try {
      regulator.succeed(attempt);
      metrics.logins_ok++;
      log({ event: "login", result: "accepted", via: outcome.via, user, ip });
    } catch (err) {
      try {
        log({ event: "login", result: "accepted", via: outcome.via, user, ip, warning: `after the code: ${(err as Error).message}` });
      } catch {
        // The log itself failed; the user still gets the session their code paid for.
      }
    }
    return signedIn;
  };
}
