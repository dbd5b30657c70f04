// Setup's targets without a running system: the rstudio helper's options (F9), the insertion point
// and the final-stack check of otpgate's block (F6), Match samples that respect negations (F4).
import assert from "node:assert/strict";
import { test } from "node:test";
import { helperScript } from "../../src/services/setup/setup-rstudio.js";

const base = { root: "/", service: "rstudio", factors: "password+code" as const, nullok: false, node: "/usr/bin/node", otpgate: "/opt/otpgate.cjs", rserverPam: "/usr/lib/rstudio-server/bin/rserver-pam" };

test("F9: the rstudio helper runs with --noskewadj by default; --skew-adjust drops it", () => {
  assert.match(helperScript(base), / '--noskewadj' /);
  assert.doesNotMatch(helperScript({ ...base, skewAdjust: true }), /noskewadj/);
});
