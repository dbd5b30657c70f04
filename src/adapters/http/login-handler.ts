// POST PREFIX/login: user name, one-time code and (when password_file is set) a password. Checks in
// this order: CSRF, ban, form shape, password (argon2id; a wrong one never touches the state file,
// so it costs no code and no rate-limit slot), then the code through the same service and state
// files as otpgate verify. Every failure looks the same to the browser.

import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { newSession } from "../../core/web/index.js";
import { USER_NAME } from "../../core/web/password-entries.js";
import { systemClock } from "../../platform/clock.js";
import { nodeMacFactory } from "../../platform/mac.js";
import { seal } from "../../platform/seal.js";
import { PasswordCheckBusy, verifyNothing, verifyPassword } from "../../platform/password-hash.js";
import { authenticateWith } from "../../services/authenticate.js";
import { userStore } from "../../services/resolve-account.js";
import { readPasswordFile } from "../../stores/password-file.js";
import { MAX_FORM, type PageContext } from "./page-context.js";
import { loginFailure, loginPage, messagePage } from "./pages.js";
import { safeReturnUrl } from "../../core/web/index.js";

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

export function createLoginHandler(ctx: PageContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { config, keys, regulator, metrics, log } = ctx;
  const P = config.pagesPrefix;
  const returnPolicy = { allowedHosts: config.allowedHosts, fallback: "/" };
  const withPassword = config.passwordFile !== null;

  return async (req, res) => {
    const cookies: string[] = [];
    if (Number(req.headers["content-length"] ?? 0) > MAX_FORM) return ctx.send(res, 413, messagePage("Too large", "The form was too large.", P));
    const form = await ctx.readForm(req);
    if (!form) return ctx.send(res, 413, messagePage("Not accepted", "The form could not be read.", P));
    const rd = safeReturnUrl(form.get("rd"), returnPolicy);
    if (!ctx.csrfOk(req, form)) {
      log({ event: "login", result: "rejected", reason: "csrf", ip: ctx.clientIp(req) });
      return ctx.send(res, 403, messagePage("Form expired", "The sign-in form expired. Please load it again.", P));
    }
    const user = form.get("user") ?? "";
    const code = form.get("code") ?? "";
    const password = form.get("password") ?? "";
    const ip = ctx.clientIp(req);
    const now = systemClock.nowMs();
    const attempt = { subject: USER_NAME.test(user) ? `user:${user}` : "malformed", address: ip.slice(0, 64) || "-" };
    const shownUser = USER_NAME.test(user) ? user : "";
    const page = (status: number, error: string) =>
      ctx.send(res, status, loginPage({ prefix: P, csrf: ctx.csrfFor(req, { cookies }), returnTo: rd, user: shownUser, error, password: withPassword }), cookies.length ? { "set-cookie": cookies } : {});
    const fail = (reason: string, detail?: string) => {
      metrics.logins_failed!++;
      const { banned } = regulator.fail(attempt, now);
      metrics.bans! += banned.length;
      log({ event: "login", result: "rejected", reason, user: shownUser || "-", ip, ...(detail ? { detail } : {}), ...(banned.length ? { banned: banned.join(" ") } : {}) });
      page(401, loginFailure(withPassword));
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
      ({ outcome } = await authenticateWith({ store: found.store, clock: systemClock, macFactory: nodeMacFactory }, code, { noSkewAdjust: true, noIncrementHotp: false, allowPrefix: false, recordSkewResetCode: true }, {}));
    } catch (err) {
      return fail("error", (err as Error).message);
    }
    if (outcome.kind !== "accepted") return fail(outcome.kind === "rejected" ? outcome.reason : outcome.kind);
    regulator.succeed(attempt);
    metrics.logins_ok!++;
    const fresh = newSession(randomBytes(18).toString("base64url"), user, now);
    log({ event: "login", result: "accepted", via: outcome.via, user, ip });
    ctx.send(res, 303, "", { location: rd, "set-cookie": [`${config.cookieName}=${seal(fresh, keys.seal)}; ${ctx.cookieAttrs}`, ...cookies] });
  };
}
