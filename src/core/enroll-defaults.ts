// The settings of an account enrolled through an invitation link (the gateway's page and the
// server that writes the file must agree): otpgate enroll's defaults - TOTP, SHA1, 6 digits, no
// reuse, at most 3 attempts per 30 s, 5 emergency codes.

import type { EnrollSettings } from "./enroll.js";

export const INVITE_ENROLL_SETTINGS: Omit<EnrollSettings, "label" | "issuer"> = {
  mode: "totp",
  disallowReuse: true,
  windowSize: undefined,
  stepSeconds: undefined,
  rateLimit: { attempts: 3, intervalSeconds: 30 },
  scratchCount: 5,
  algorithm: "SHA1",
  digits: 6,
};
