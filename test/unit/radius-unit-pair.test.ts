import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { checkRadiusUnitPair } from "../../src/admin/doctor.js";

test("doctor: an older otpgate-radius.service alone or otpgate-server.service alone is fine; both: a warning that says which to disable", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-unit-pair-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const old = join(dir, "otpgate-radius.service");
  const now = join(dir, "otpgate-server.service");
  assert.deepEqual(checkRadiusUnitPair(old, now), [], "neither");
  writeFileSync(old, "[Service]\nExecStart=/usr/bin/node /usr/lib/otpgate/otpgate.cjs radius\n");
  assert.deepEqual(checkRadiusUnitPair(old, now), [], "the old unit alone (an older install) is accepted");
  writeFileSync(now, "[Service]\nExecStart=/usr/bin/node /usr/lib/otpgate/otpgate.cjs server\n");
  const both = checkRadiusUnitPair(old, now);
  assert.equal(both.length, 1);
  assert.equal(both[0]!.severity, "warn");
  assert.match(both[0]!.message, /otpgate-radius\.service .*older otpgate setup.*otpgate-server\.service exist.*only one of them can run/);
  assert.match(both[0]!.fix ?? "", /systemctl disable --now otpgate-radius && systemctl enable --now otpgate-server/);
  rmSync(old);
  assert.deepEqual(checkRadiusUnitPair(old, now), [], "the new unit alone");
});
