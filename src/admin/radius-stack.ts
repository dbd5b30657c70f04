// The RADIUS backend's PAM stack as libpam runs it, for doctor: pam_radius_auth.so sends the code
// to `otpgate radius`, which uses it up when it is right. A password module before it must END the
// stack when the password is wrong (requisite, [success=ok default=die], or a failure that falls
// into `requisite pam_deny.so` as in common-auth); with `required pam_unix.so` the stack goes on
// after a wrong password, pam_radius_auth sends the right code, and the code is burnt by a login
// that fails anyway. The stack is walked with every credential module failing and every other
// module succeeding; if pam_radius_auth is reached after a failed password, that line is the
// problem.

import { bypassBefore, moduleName, type PamLine } from "./pam-stack.js";

/** Modules that check a password (or another credential of their own) at the PAM prompt. */
const CREDENTIAL = /^pam_(unix|sss|ldap|krb5|winbind|pwdfile|userdb|mysql|pgsql|unix2)\.so$/;

export const isRadiusLine = (l: PamLine): boolean => moduleName(l) === "pam_radius_auth.so";

/** libpam's action for a module result under a control ("ok", "bad", "die", "done", "ignore", "reset", or a jump). */
export function actionFor(control: string, result: "success" | "auth_err"): string {
  switch (control) {
    case "required":
      return result === "success" ? "ok" : "bad";
    case "requisite":
      return result === "success" ? "ok" : "die";
    case "sufficient":
      return result === "success" ? "done" : "ignore";
    case "optional":
      return result === "success" ? "ok" : "ignore";
  }
  const body = /^\[(.*)\]$/.exec(control)?.[1];
  if (body === undefined) return "bad";
  const actions = new Map<string, string>();
  for (const pair of body.trim().split(/\s+/)) {
    const [key, value = ""] = pair.split("=");
    if (key) actions.set(key.toLowerCase(), value.toLowerCase());
  }
  // Values a bracket does not name take `default`, and without one libpam's "bad".
  return actions.get(result) ?? actions.get("default") ?? "bad";
}

/**
 * The credential line whose failure still lets the stack reach pam_radius_auth at `radiusAt`
 * (the code would be sent after a wrong password), or null when every failed password ends the
 * stack first. An unreadable include counts as reaching it (doctor cannot tell).
 */
export function passwordFailureReachesCode(stack: readonly PamLine[], radiusAt: number): PamLine | null {
  let failed: PamLine | null = null;
  let i = 0;
  for (let guard = 0; i < stack.length && guard < 1000; guard++) {
    if (i === radiusAt) return failed;
    const l = stack[i]!;
    if (l.unreadableInclude) return l;
    const credential = CREDENTIAL.test(moduleName(l));
    const fails = credential || moduleName(l) === "pam_deny.so";
    if (credential && failed === null) failed = l;
    const action = actionFor(l.control, fails ? "auth_err" : "success");
    if (action === "die" || action === "done") return null;
    i += /^\d+$/.test(action) ? Number(action) + 1 : 1;
  }
  return null;
}

export interface RadiusStackFinding {
  readonly severity: "ok" | "fail";
  readonly message: string;
  readonly fix?: string;
}

/** What doctor says about an auth stack with pam_radius_auth.so (null when it has none). */
export function radiusStackFindings(path: string, stack: readonly PamLine[]): RadiusStackFinding[] | null {
  const at = stack.findIndex(isRadiusLine);
  if (at < 0) return null;
  const bypass = bypassBefore(stack, at);
  if (bypass) {
    return [
      {
        severity: "fail",
        message: `${path}: "auth ${bypass.control} ${bypass.unreadableInclude ?? bypass.module}" comes before pam_radius_auth.so: it can end the auth stack with success or jump over the code check`,
        fix: "otpgate setup ssh --backend radius",
      },
    ];
  }
  const burner = passwordFailureReachesCode(stack, at);
  if (burner) {
    return [
      {
        severity: "fail",
        message: `${path}: after a wrong password "auth ${burner.control} ${burner.unreadableInclude ?? burner.module}" lets the stack go on to pam_radius_auth.so, which sends the code to otpgate radius: a right code is used up by a login that fails`,
        fix: `make the password line end the stack on failure ("auth [success=ok default=die] ${burner.module || "pam_unix.so"}"), as otpgate setup ssh --backend radius --factors key+password+code writes it`,
      },
    ];
  }
  const password = stack.slice(0, at).find((l) => CREDENTIAL.test(moduleName(l)));
  return [
    {
      severity: "ok",
      message: password
        ? `${path}: the password (${moduleName(password)}) must succeed before pam_radius_auth.so sends the code to otpgate radius`
        : `${path}: the code is checked by otpgate radius through pam_radius_auth.so`,
    },
  ];
}
