import assert from "node:assert/strict";
import { test } from "node:test";
import { logFields, logValue } from "../../src/core/log-fields.js";

test("plain tokens stay as they are, in order, undefined left out, null is -", () => {
  assert.equal(logFields({ user: "alice", service: "sshd", rhost: "127.0.0.1", port: 22, ok: true, skip: undefined, none: null }), "user=alice service=sshd rhost=127.0.0.1 port=22 ok=true none=-");
});

test("a value cannot forge a field, a line or a terminal escape", () => {
  const forged = logFields({ user: "bob result=accepted via=totp" });
  assert.equal(forged, 'user="bob result=accepted via=totp"');
  assert.equal(logValue("x\ny"), '"x\\ny"');
  assert.equal(logValue("\x1b[31mred"), '"\\u001b[31mred"');
  assert.equal(logValue('a"b'), '"a\\"b"');
  assert.equal(logValue("é"), '"\\u00e9"');
  assert.equal(logValue(""), '""');
  assert.doesNotMatch(logValue("\u2028\u0085\x7f"), /[^\x20-\x7e]/);
});

test("long values are cut", () => {
  const v = logValue("a b".repeat(1000));
  assert.ok(v.length < 300, String(v.length));
});
