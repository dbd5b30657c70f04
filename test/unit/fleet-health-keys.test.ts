// RT1 F1 (log part): a key id missing from the key file, or a row changed outside otpgate, is a
// problem of the key file / the row, not an outage: it is logged as such and does not mark the
// database down.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FleetHealth } from "../../src/adapters/server/fleet-health.js";
import { FleetKeyMissing, FleetRowInvalid } from "../../src/stores/pg/errors.js";

test("a missing key id or an invalid row is not logged as 'the fleet database cannot be reached'", () => {
  const lines: { kind: string; fields: Readonly<Record<string, unknown>> }[] = [];
  const health = new FleetHealth(
    () => 0,
    (_level, kind, fields) => lines.push({ kind, fields }),
  );
  health.failed(new FleetKeyMissing("k2-abc", "/etc/otpgate/db.key"));
  health.failed(new FleetRowInvalid("the row was changed outside otpgate"));
  assert.equal(health.down, false, "not an outage");
  assert.deepEqual(
    lines.map((l) => l.kind),
    ["fleet:key-file", "fleet:row-invalid"],
  );
  assert.ok(lines.every((l) => !/cannot be reached/.test(String(l.fields["message"]))));
  assert.match(String(lines[0]!.fields["message"]), /k2-abc/);
});
