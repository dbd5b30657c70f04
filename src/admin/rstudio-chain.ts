// RStudio's sign-in end to end, across the files setup writes: rserver.conf decides whether
// rserver-pam runs the PAM service directly (factors code: otpgate's line must be in it) or
// otpgate's helper runs first and hands the password to rserver-pam (password+code: the service
// must check a password and must not hold otpgate's code line, or the "password" part is checked
// as a second code). Used by setup rstudio before success and by doctor.

import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { isOtpgateLine, moduleName, readPamStack } from "./pam-stack.js";

/** Modules that check the user's password. */
const PASSWORD_MODULE = /^pam_(unix|sss|ldap|krb5|winbind|userdb|pwdfile|pwquality_auth)\.so$/;

/** Where includes of a service file are looked up: its own directory, then the host's /etc/pam.d. */
export const pamDirsFor = (pamPath: string): string[] => [...new Set([dirname(pamPath), "/etc/pam.d"])];

/** The helper path rserver.conf configures, or null. */
export function rserverHelperPath(rserverConf: string): string | null {
  if (!existsSync(rserverConf)) return null;
  return /^\s*auth-pam-helper-path\s*=\s*(\S+)/m.exec(readFileSync(rserverConf, "utf8"))?.[1] ?? null;
}

/** Problems of the configured chain ("password+code" when rserver.conf points at otpgate's helper). */
export function rstudioChainProblems(factors: "code" | "password+code", pamPath: string, rserverConf: string): string[] {
  const problems: string[] = [];
  const helper = rserverHelperPath(rserverConf);
  const stack = existsSync(pamPath) ? readPamStack(pamPath, pamDirsFor(pamPath), "auth") : [];
  const otpgate = stack.find(isOtpgateLine);
  if (factors === "password+code") {
    if (!helper || !/otpgate/.test(helper)) problems.push(`${rserverConf} does not point auth-pam-helper-path at otpgate's helper, so RStudio never asks for the code`);
    if (!existsSync(pamPath)) problems.push(`${pamPath} does not exist: rserver-pam has no PAM service to check the password with`);
    if (otpgate)
      problems.push(
        `${pamPath} still holds otpgate's code line (${otpgate.file}): otpgate's helper hands the password to rserver-pam, which would check it as a second code, so CODE+CODE gets in and password+code does not`,
      );
    const password = stack.find((l) => PASSWORD_MODULE.test(moduleName(l)) && l.control !== "optional");
    if (!password && existsSync(pamPath))
      problems.push(
        `${pamPath} checks no password (no pam_unix.so or similar in its auth stack${stack.some((l) => l.unreadableInclude) ? `; ${stack.find((l) => l.unreadableInclude)!.unreadableInclude} cannot be read` : ""}): with password+code the password is RStudio's PAM service's to check`,
      );
  } else {
    if (helper) problems.push(`${rserverConf} still sets auth-pam-helper-path=${helper}: rserver runs that helper instead of the PAM service`);
    if (!otpgate) problems.push(`${pamPath} has no otpgate line: with factors code the PAM service must check the code`);
  }
  return problems;
}
