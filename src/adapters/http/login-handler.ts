// POST PREFIX/login: user name, one-time code and (when password_file is set) a password. Checks in
// this order: CSRF, ban, form shape, password (argon2id; a wrong one never touches the state file,
// so it costs no code and no rate-limit slot), then the code through the same service and state
// files as otpgate verify. Every failure looks the same to the browser.

import { headerValue } from "../../core/web/headers.js";
import { USER_NAME } from "../../core/web/password-entries.js";
import { nodeMacFactory } from "../../platform/mac.js";
import { PasswordCheckBusy, verifyNothing, verifyPassword } from "../../platform/password-hash.js";
import { authenticateWith } from "../../services/authenticate.js";
import { userStore } from "../../services/resolve-account.js";
import { readPasswordFile } from "../../stores/password-file.js";
import type { HandlerContext } from "./gateway-context.js";
import type { GatewayRequest, GatewayResponse } from "./gateway-types.js";
import { MAX_FORM } from "./page-kit.js";
import { loginFailure, loginPage, messagePage } from "./pages.js";
import { attemptAddress, safeReturnUrl } from "../../core/web/index.js";

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

export function createLoginHandler(ctx: HandlerContext): (req: GatewayRequest) => Promise<GatewayResponse> {
  const { config, kit, sessions, regulator, metrics, log, clock } = ctx;
  const P = config.pagesPrefix;
  const returnPolicy = { allowedHosts: config.allowedHosts, fallback: "/" };
  const withPassword = config.passwordFile !== null;

  return async (req) => {
    const cookies: string[] = [];
    if (Number(headerValue(req.headers, "content-length") ?? 0) > MAX_FORM) return kit.page(413, messagePage("Too large", "The form was too large.", P));
    const form = await kit.readForm(req);
    if (!form) return kit.page(413, messagePage("Not accepted", "The form could not be read.", P));
    const rd = safeReturnUrl(form.get("rd"), returnPolicy);
    if (!kit.csrfOk(req, form)) {
      log({ event: "login", result: "rejected", reason: "csrf", ip: ctx.clientAddress(req) });
      return kit.page(403, messagePage("Form expired", "The sign-in form expired. Please load it again.", P));
    }
    const user = form.get("user") ?? "";
    const code = form.get("code") ?? "";
    const password = form.get("password") ?? "";
    const ip = ctx.clientAddress(req);
    const now = clock.nowMs();
    const attempt = { subject: USER_NAME.test(user) ? `user:${user}` : "malformed", address: attemptAddress(ip) };
    const shownUser = USER_NAME.test(user) ? user : "";
    const page = (status: number, error: string) =>
      kit.page(status, loginPage({ prefix: P, csrf: kit.csrfFor(req, cookies), returnTo: rd, user: shownUser, error, password: withPassword }), cookies.map((c) => ["set-cookie", c] as const));
    const fail = (reason: string, detail?: string) => {
      metrics.logins_failed!++;
      const { banned } = regulator.fail(attempt, now);
      metrics.bans! += banned.length;
      log({ event: "login", result: "rejected", reason, user: shownUser || "-", ip, ...(detail ? { detail } : {}), ...(banned.length ? { banned: banned.join(" ") } : {}) });
      return page(401, loginFailure(withPassword));
    };
    if (regulator.admit(attempt, now).kind === "banned") return fail("banned");
    if (!USER_NAME.test(user) || !/^[0-9]{6,8}$/.test(code) || (withPassword && password === "")) return fail("malformed");
    const found = userStore(user, { secret: config.stateFiles });
    if (withPassword) {
      const check = await checkPassword(config.passwordFile!, user, password, found !== null);
      if (check.result === "busy") {
        log({ event: "login", result: "rejected", reason: "busy", user, ip });
        return page(503, "Too many sign-ins at once. Please try again in a minute.");
      }
      if (check.result !== "ok") return fail(found ? `password-${check.result}` : "unknown-user", check.detail);
    }
    if (!found) return fail("unknown-user");
    let outcome;
    try {
      ({ outcome } = await authenticateWith({ store: found.store, clock, macFactory: nodeMacFactory }, code, { noSkewAdjust: true, noIncrementHotp: false, allowPrefix: false, recordSkewResetCode: true }, {}));
    } catch (err) {
      return fail("error", (err as Error).message);
    }
    if (outcome.kind !== "accepted") return fail(outcome.kind === "rejected" ? outcome.reason : outcome.kind);
    regulator.succeed(attempt);
    metrics.logins_ok!++;
    const fresh = sessions.issue(user, now);
    log({ event: "login", result: "accepted", via: outcome.via, user, ip });
    return kit.page(303, "", [["location", rd], ["set-cookie", ctx.sessionCookie(fresh.cookie)], ...cookies.map((c) => ["set-cookie", c] as const)]);
  };
}
