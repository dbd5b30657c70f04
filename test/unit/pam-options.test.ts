import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePamOptions } from "../../src/adapters/pam/options.js";

test("require_publickey is an option of its own, off by default, exactly that name", () => {
  const on = parsePamOptions(["require_publickey", "nullok"]);
  assert.equal(on.ok && on.options.requirePublickey, true);
  const off = parsePamOptions([]);
  assert.equal(off.ok && off.options.requirePublickey, false);
  for (const near of ["require-publickey", "require_publickey=1", "requirepublickey"]) {
    assert.deepEqual(parsePamOptions([near]), { ok: false, error: `Unrecognized option "${near}"` });
  }
});
