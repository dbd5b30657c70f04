import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_SECRET_SPEC, expandSecretPath } from "../../src/stores/secret-path.js";

const alice = { name: "alice", home: "/home/alice" };

test("the default is ~/.google_authenticator of the account", () => {
  assert.equal(expandSecretPath(DEFAULT_SECRET_SPEC, alice), "/home/alice/.google_authenticator");
});

test("${USER}, ${HOME} and ~ expand like the reference module's secret=", () => {
  assert.equal(expandSecretPath("/var/lib/otp/${USER}.ga", alice), "/var/lib/otp/alice.ga");
  assert.equal(expandSecretPath("${HOME}/.ga-${USER}", alice), "/home/alice/.ga-alice");
  assert.equal(expandSecretPath("/srv/~/x", alice), "/srv//home/alice/x", "~ right after a slash expands");
  assert.equal(expandSecretPath("/srv/a~b", alice), "/srv/a~b", "~ inside a name stays");
  assert.equal(expandSecretPath("/x/${USER}~", alice), "/x/alice~", "~ straight after an expansion stays");
  assert.equal(expandSecretPath("/x/$USER", alice), "/x/$USER", "$USER without braces stays literal");
});

test("errors say what to change: no home directory, or a relative result", () => {
  assert.throws(() => expandSecretPath("~/.ga", { name: "bob", home: null }), /no home directory is known for "bob"; give an absolute path/);
  assert.throws(() => expandSecretPath("${USER}.ga", alice), /"alice.ga" \(from "\$\{USER\}.ga"\) is not absolute/);
});

test("${USER} refuses a name that would leave the directory (PAM_USER comes from outside)", () => {
  for (const name of ["..", ".", "../root", "a/b", "x\u0000", "x\ny", "", "x".repeat(300)]) {
    assert.throws(() => expandSecretPath("/var/lib/otp/${USER}.ga", { name, home: null }), /the user name .* cannot be used: it /, JSON.stringify(name));
  }
  assert.equal(expandSecretPath("/var/lib/otp/${USER}.ga", { name: "bob.smith@corp", home: null }), "/var/lib/otp/bob.smith@corp.ga");
});
