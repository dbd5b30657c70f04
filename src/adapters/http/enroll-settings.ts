// The state file an invitation creates: otpgate enroll's defaults (TOTP, no reuse, rate limit 3 per
// 30 s, 5 emergency codes, SHA1, 6 digits). Shared by the invitation page (the QR code and the code
// that confirms it) and the in-process decision service (the file it writes).

import type { EnrollSettings } from "../../core/enroll.js";

export const GATEWAY_ENROLL_SETTINGS: Omit<EnrollSettings, "label" | "issuer"> = {
  mode: "totp",
  disallowReuse: true,
  windowSize: undefined,
  stepSeconds: undefined,
  rateLimit: { attempts: 3, intervalSeconds: 30 },
  scratchCount: 5,
  algorithm: "SHA1",
  digits: 6,
};
