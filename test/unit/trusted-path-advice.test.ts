// Review 2, F5: an untrusted installation is never "repaired" in place. A user who owned a file can
// keep a write descriptor across chown/chmod and rewrite the bundle afterwards, and a user-owned
// directory keeps the files and hard links the user put in it. Every fix says: reinstall fresh as
// root from a tarball (new files) and remove the old tree; none says chown or chmod.
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { installProblems, pathProblems } from "../../src/platform/trusted-path.js";
import { ROOT } from "../helpers/system.js";

const STRANGER = 54322;

test(
  "every fix for a user-owned or writable install component: reinstall fresh from a tarball, remove the old tree; never chown/chmod in place",
  { skip: process.geteuid?.() !== 0 && "needs root (chown)" },
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), "otpgate-advice-"));
    chmodSync(dir, 0o755);
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const dist = join(dir, "lib/node_modules/otpgate/dist");
    mkdirSync(dist, { recursive: true, mode: 0o755 });
    for (const f of ["otpgate.cjs", "otpgate-core.cjs"]) writeFileSync(join(dist, f), "//\n", { mode: 0o755 });
    chownSync(join(dist, "otpgate-core.cjs"), STRANGER, STRANGER); // a user's file
    chmodSync(join(dist, "otpgate.cjs"), 0o775); // group-writable
    mkdirSync(join(dir, "open"), { mode: 0o755 });
    chmodSync(join(dir, "open"), 0o777); // world-writable directory
    const problems = [...installProblems({ node: process.execPath, launcher: join(dist, "otpgate.cjs") }), ...pathProblems(join(dir, "open"))].filter((p) => p.path.startsWith(dir));
    assert.equal(problems.length, 3, JSON.stringify(problems));
    for (const p of problems) {
      assert.doesNotMatch(p.fix, /\bch(own|mod)\b/, `no in-place repair for ${p.path}: ${p.fix}`);
      assert.match(p.fix, /reinstall/i);
      assert.match(p.fix, /npm install -g \.\/otpgate-\*\.tgz/);
      assert.match(p.fix, /remove the old/i);
    }
  },
);

test("the README's troubleshooting and doctor sections do not advise chown/chmod of an installation", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const lines = readme.split("\n").filter((l) => /install|StrictModes|is owned by uid|world-writable/i.test(l));
  for (const l of lines) assert.doesNotMatch(l, /chown -R root:root|chmod -R go-w|`chown root:root …`|`chmod go-w …`/, l);
});
