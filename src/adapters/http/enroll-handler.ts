// PREFIX/enroll/TOKEN: self-service enrollment from an invitation link (otpgate invite). GET shows a
// new secret as a QR code; the secret and emergency codes travel sealed (AES-GCM) in the form, so
// nothing is stored until the user proves with a code that the app has the secret. POST checks the
// code, then asks the decision service to enroll: it claims the invitation (used once) and writes
// the state file as the user, like otpgate enroll (INVITE_ENROLL_SETTINGS, core/enroll-defaults.ts). The gateway itself
// keeps only the draft, the QR code, the confirming code and its own password file: it never
// touches invites_dir or a home directory when it asks `otpgate server` (decision_socket).

import { confirmsNewSecret, drawCredentials, groupSecret, keyUriFor, type Credentials } from "../../core/enroll.js";
import { passwordProblem } from "../../core/web/password-entries.js";
import { attemptAddress } from "../../core/web/regulation.js";
import { nodeMacFactory } from "../../platform/mac.js";
import { hashPassword } from "../../platform/password-hash.js";
import { formatScratchCode } from "../../formats/ga-document.js";
import { DecisionServiceUnavailable, type AccountReply, type InviteReply } from "../../ports/decision-service.js";
import { existingPasswords, updatePasswordFile } from "../../stores/password-file.js";
import { INVITE_ENROLL_SETTINGS as SETTINGS } from "../../core/enroll-defaults.js";
import type { HandlerContext } from "./gateway-context.js";
import { LookupUnavailable } from "./lookup-unavailable.js";
import type { GatewayRequest, GatewayResponse } from "./gateway-types.js";
import { enrolledPage, enrollPage, messagePage } from "./pages.js";

type Invite = NonNullable<InviteReply["invite"]>;

const INVITE_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** How long a shown QR code can be confirmed. */
const DRAFT_MS = 30 * 60_000;

interface Draft {
  readonly invite: string;
  readonly secret: string;
  readonly scratch: readonly number[];
  readonly until: number;
}

export function createEnrollHandler(ctx: HandlerContext): (req: GatewayRequest, token: string) => Promise<GatewayResponse> {
  const { config, sessions, regulator, metrics, log, kit, clock, random, decisions } = ctx;
  const P = config.pagesPrefix;
  const gone = () =>
    kit.page(404, messagePage("Link not valid", "This setup link cannot be used: it was used already, it expired, or a newer one replaced it. Ask your administrator for a new link.", P));

  /** The password factor is on and the user has no password yet (an unreadable file counts as none). */
  const needsPassword = (user: string): boolean => {
    if (!config.passwordFile) return false;
    try {
      return !existingPasswords(config.passwordFile)?.has(user);
    } catch {
      return true;
    }
  };

  async function show(req: GatewayRequest, token: string, invite: Invite, credentials: Credentials, until: number, error?: string): Promise<GatewayResponse> {
    const cookies: string[] = [];
    const settings = { ...SETTINGS, label: invite.user, issuer: config.issuer };
    const uri = keyUriFor(settings, credentials.secret);
    const { qrSvg } = await import("../../platform/qr-lib.js");
    const draft: Draft = { invite: invite.id, secret: credentials.secret, scratch: credentials.scratchCodes, until };
    return kit.page(
      error ? 400 : 200,
      enrollPage({
        prefix: P,
        action: `${P}/enroll/${token}`,
        csrf: kit.csrfFor(req, cookies),
        user: invite.user,
        draft: sessions.keys().seal("enroll-draft", draft), // its own purpose: never a session or CSRF token
        qrSvg: await qrSvg(uri),
        groupedSecret: groupSecret(credentials.secret),
        uri,
        digits: settings.digits,
        newPassword: needsPassword(invite.user),
        ...(error ? { error } : {}),
      }),
      cookies.map((c) => ["set-cookie", c] as const),
    );
  }

  return async (req, token) => {
    const now = clock.nowMs();
    const busy = (reason: string, detail: string) => {
      log({ event: "enroll", result: "rejected", reason, detail });
      return kit.page(503, messagePage("Busy", "The server could not look up your invitation or account just now. Please open the link again in a minute.", P));
    };
    // A token that cannot be one (otpgate invite makes 43 base64url characters) is not worth a question.
    if (!INVITE_TOKEN.test(token)) return gone();
    let invite: Invite | null;
    let account: AccountReply;
    try {
      invite = (await decisions.invite({ token })).invite;
      if (!invite) return gone();
      // The account as the decision service sees it (asynchronous, with a timeout), never a blocking getent.
      account = await decisions.account({ user: invite.user });
    } catch (err) {
      if (err instanceof LookupUnavailable) return busy(`lookup-${err.reason}`, err.message);
      if (err instanceof DecisionServiceUnavailable) return busy("decision-service-unavailable", err.message);
      throw err;
    }
    if (account.account === "unknown") {
      log({ event: "enroll", result: "rejected", reason: "unknown-user", user: invite.user, invite: invite.id.slice(0, 12) });
      return kit.page(404, messagePage("Link not valid", `There is no account ${invite.user} on this server. Ask your administrator.`, P));
    }
    if (!invite.replace && (account.account === "enrolled" || account.account === "unusable")) {
      return kit.page(409, messagePage("Already set up", `${invite.user} already has sign-in codes. If you lost your phone, ask your administrator for a replacement link.`, P));
    }
    if (req.method === "GET") return show(req, token, invite, drawCredentials(SETTINGS.scratchCount, random), now + DRAFT_MS);
    if (req.method !== "POST") return kit.page(405, messagePage("Not allowed", "Open the link in a browser.", P), [["allow", "GET, POST"]]);

    const form = await kit.readForm(req);
    if (!form) return kit.page(413, messagePage("Not accepted", "The form could not be read.", P));
    if (!kit.csrfOk(req, form)) return kit.page(403, messagePage("Form expired", "The form expired. Please open the link again.", P));
    const ip = ctx.clientAddress(req);
    const attempt = { subject: `invite:${invite.id}`, address: attemptAddress(ip) };
    if (regulator.admit(attempt, now).kind === "banned") {
      log({ event: "enroll", result: "rejected", reason: "banned", user: invite.user, ip });
      return kit.page(429, messagePage("Too many attempts", "Too many wrong codes. Wait a few minutes, then open the link again.", P));
    }
    const draft = sessions.keys().open("enroll-draft", form.get("draft") ?? "") as Draft | null;
    if (
      !draft ||
      typeof draft !== "object" ||
      draft.invite !== invite.id ||
      typeof draft.secret !== "string" ||
      !Array.isArray(draft.scratch) ||
      typeof draft.until !== "number" ||
      draft.until <= now
    ) {
      return kit.page(400, messagePage("Page expired", "This page was open too long. Open the link again to get a new QR code.", P));
    }
    const credentials: Credentials = { secret: draft.secret, scratchCodes: draft.scratch };
    const again = (reason: string, message: string) => {
      const { banned } = regulator.fail(attempt, now);
      metrics.bans! += banned.length;
      log({ event: "enroll", result: "rejected", reason, user: invite.user, ip });
      return show(req, token, invite, credentials, draft.until, message);
    };
    if (!confirmsNewSecret(draft.secret, SETTINGS, (form.get("code") ?? "").trim(), now, nodeMacFactory)) {
      return again("wrong-code", "That code did not match. Check that the app shows this account and that the phone sets its clock automatically, then type the current code.");
    }
    let passwordHash: string | null = null;
    if (needsPassword(invite.user)) {
      const password = form.get("password") ?? "";
      const problem = passwordProblem(password);
      if (problem) return show(req, token, invite, credentials, draft.until, `Your password was not accepted: ${problem}.`);
      if (form.get("password2") !== password) return show(req, token, invite, credentials, draft.until, "The two passwords differ. Type the same password twice.");
      passwordHash = await hashPassword(password);
    }

    let result;
    try {
      // The password first: should the state file then fail, the link asks only for the code again.
      if (passwordHash) await updatePasswordFile(config.passwordFile!, invite.user, passwordHash);
      // The decision service claims the invitation (once) and writes the state file as the user.
      result = (await decisions.enroll({ token, secret: credentials.secret, scratchCodes: credentials.scratchCodes })).result;
    } catch (err) {
      log({ event: "enroll", result: "error", user: invite.user, ip, detail: (err as Error).message });
      return kit.page(
        err instanceof DecisionServiceUnavailable ? 503 : 500,
        messagePage("Not saved", "Your setup could not be saved, so nothing changed. Tell your administrator; the link still works once this is fixed.", P),
      );
    }
    if (result === "gone") return gone();
    if (result === "unknown-user") return kit.page(404, messagePage("Link not valid", `There is no account ${invite.user} on this server. Ask your administrator.`, P));
    if (result === "exists") return kit.page(409, messagePage("Already set up", `${invite.user} already has sign-in codes. If you lost your phone, ask your administrator for a replacement link.`, P));
    // A new secret: the sessions signed in with the old one end now (and any tunnels with them).
    if (invite.replace) sessions.revokeUser(invite.user, now);
    metrics.enrollments!++;
    log({ event: "enroll", result: "accepted", user: invite.user, ip, replaced: invite.replace });
    return kit.page(200, enrolledPage({ prefix: P, user: invite.user, scratchCodes: credentials.scratchCodes.map(formatScratchCode) }));
  };
}
