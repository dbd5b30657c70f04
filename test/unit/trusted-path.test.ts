// StrictModes for what root runs: every component of a path (links and their targets) must be
// owned by root and writable by nobody else; an installation is node, the launcher, every file
// next to it and the packages the bundles load. Owners are changed with chown to a throwaway uid.
import assert from "node:assert/strict";
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { installProblems, pathProblems, REINSTALL_FRESH, RUNTIME_PACKAGES, stateLocationProblems, type TrustProblem } from "../../src/platform/trusted-path.js";
import { ROOT } from "../helpers/system.js";

const STRANGER = 54321; // a uid nobody has

function base(t: TestContext): string | null {
  if (process.geteuid?.() !== 0) {
    t.skip("needs root (chown)");
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "otpgate-trust-"));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Problems inside the test's own tree (the temp directory's parents, /tmp, are not the point). */
const inside = (dir: string, problems: TrustProblem[]) => problems.filter((p) => p.path.startsWith(dir)).map((p) => `${p.path.slice(dir.length)}: ${p.reason}`);

function fakePackage(dir: string): { launcher: string; pkg: string } {
  const pkg = join(dir, "lib/node_modules/otpgate");
  mkdirSync(join(pkg, "dist"), { recursive: true, mode: 0o755 });
  mkdirSync(join(pkg, "node_modules/@node-rs/argon2"), { recursive: true, mode: 0o755 });
  for (const f of ["otpgate.cjs", "otpgate-core.cjs", "otpgate-core.cjs.cache", "otpgate-qr.cjs", "otpgate-gateway.cjs"]) writeFileSync(join(pkg, "dist", f), "//\n", { mode: 0o755 });
  writeFileSync(join(pkg, "node_modules/@node-rs/argon2/index.js"), "//\n", { mode: 0o644 });
  return { launcher: join(pkg, "dist/otpgate.cjs"), pkg };
}

test("a root-owned path with no group/world write passes; each component owned by someone else is named", (t) => {
  const dir = base(t);
  if (!dir) return;
  mkdirSync(join(dir, "a/b/c"), { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, "a/b/c/file"), "x", { mode: 0o755 });
  assert.deepEqual(inside(dir, pathProblems(join(dir, "a/b/c/file"))), []);
  chownSync(join(dir, "a/b"), STRANGER, STRANGER);
  assert.deepEqual(inside(dir, pathProblems(join(dir, "a/b/c/file"))), [`/a/b: owned by uid ${STRANGER}, not root`]);
  chownSync(join(dir, "a/b"), 0, 0);
  chmodSync(join(dir, "a/b/c/file"), 0o775);
  chmodSync(join(dir, "a"), 0o757);
  assert.deepEqual(inside(dir, pathProblems(join(dir, "a/b/c/file"))), ["/a: world-writable (mode 0757)", "/a/b/c/file: group-writable (mode 0775, group 0)"]);
  const fixes = pathProblems(join(dir, "a/b/c/file"))
    .filter((p) => p.path.startsWith(dir))
    .map((p) => p.fix);
  assert.deepEqual(fixes, [REINSTALL_FRESH, REINSTALL_FRESH], "never a repair in place (review 2, F5)");
});

test("a sticky world-writable directory (like /tmp) is not acceptable", (t) => {
  const dir = base(t);
  if (!dir) return;
  mkdirSync(join(dir, "sticky"), { mode: 0o755 });
  chmodSync(join(dir, "sticky"), 0o1777);
  writeFileSync(join(dir, "sticky/otpgate.cjs"), "x", { mode: 0o755 });
  const problems = pathProblems(join(dir, "sticky/otpgate.cjs"));
  assert.deepEqual(inside(dir, problems), ["/sticky: world-writable (mode 01777); sticky, but anyone can still create names in it"]);
  assert.match(problems.find((p) => p.path.endsWith("/sticky"))!.fix, /^do not run otpgate from under \S+; do not repair it in place.*reinstall fresh as root/);
  if (tmpdir() === "/tmp")
    assert.ok(
      problems.some((p) => p.path === "/tmp" && /world-writable/.test(p.reason)),
      "/tmp itself is flagged",
    );
});

test("symbolic links: the link itself, then every component of its target (absolute or relative)", (t) => {
  const dir = base(t);
  if (!dir) return;
  mkdirSync(join(dir, "bin"), { mode: 0o755 });
  mkdirSync(join(dir, "home/user/checkout/dist"), { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, "home/user/checkout/dist/otpgate.cjs"), "x", { mode: 0o755 });
  // npm install -g . : a root-owned link into a checkout the user owns
  symlinkSync("../home/user/checkout/dist/otpgate.cjs", join(dir, "bin/otpgate"));
  assert.deepEqual(inside(dir, pathProblems(join(dir, "bin/otpgate"))), []);
  chownSync(join(dir, "home/user/checkout"), STRANGER, STRANGER);
  assert.deepEqual(inside(dir, pathProblems(join(dir, "bin/otpgate"))), [`/home/user/checkout: owned by uid ${STRANGER}, not root`]);
  chownSync(join(dir, "home/user/checkout"), 0, 0);
  lchownSync(join(dir, "bin/otpgate"), STRANGER, STRANGER);
  assert.deepEqual(inside(dir, pathProblems(join(dir, "bin/otpgate"))), [`/bin/otpgate: owned by uid ${STRANGER}, not root`]);
  symlinkSync("loop", join(dir, "bin/loop"));
  assert.ok(pathProblems(join(dir, "bin/loop")).some((p) => p.reason === "in a loop of symbolic links"));
  assert.deepEqual(inside(dir, pathProblems(join(dir, "bin/missing"))), ["/bin/missing: missing"]);
  assert.deepEqual(
    pathProblems("relative/otpgate").map((p) => p.reason),
    ["not an absolute path"],
  );
});

test("an installation: node, the launcher, every file next to it (loaded lazily too) and the runtime packages", (t) => {
  const dir = base(t);
  if (!dir) return;
  const { launcher, pkg } = fakePackage(dir);
  const check = () => inside(dir, installProblems({ node: process.execPath, launcher }));
  assert.deepEqual(check(), []);
  assert.deepEqual(
    installProblems({ node: process.execPath, launcher }).filter((p) => !p.path.startsWith(tmpdir())),
    [],
    "this machine's node is root's",
  );
  // the user owns dist/ but not the files: they can replace any file in it
  chownSync(join(pkg, "dist"), STRANGER, STRANGER);
  assert.deepEqual(check(), [`/lib/node_modules/otpgate/dist: owned by uid ${STRANGER}, not root`]);
  chownSync(join(pkg, "dist"), 0, 0);
  chownSync(join(pkg, "dist/otpgate-qr.cjs"), STRANGER, STRANGER);
  chmodSync(join(pkg, "dist/otpgate-gateway.cjs"), 0o777);
  assert.deepEqual(check(), [`/lib/node_modules/otpgate/dist/otpgate-gateway.cjs: world-writable (mode 0777)`, `/lib/node_modules/otpgate/dist/otpgate-qr.cjs: owned by uid ${STRANGER}, not root`]);
  chownSync(join(pkg, "dist/otpgate-qr.cjs"), 0, 0);
  chmodSync(join(pkg, "dist/otpgate-gateway.cjs"), 0o755);
  chownSync(join(pkg, "node_modules/@node-rs/argon2/index.js"), STRANGER, STRANGER);
  assert.deepEqual(check(), [`/lib/node_modules/otpgate/node_modules/@node-rs/argon2/index.js: owned by uid ${STRANGER}, not root`]);
  assert.equal(installProblems({ node: process.execPath, launcher }).find((p) => p.path.endsWith("index.js"))!.fix, REINSTALL_FRESH);
  // a node the user can replace
  mkdirSync(join(dir, "opt/node/bin"), { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, "opt/node/bin/node"), "", { mode: 0o755 });
  chownSync(join(dir, "opt/node"), STRANGER, STRANGER);
  assert.ok(inside(dir, installProblems({ node: join(dir, "opt/node/bin/node"), launcher })).includes(`/opt/node: owned by uid ${STRANGER}, not root`));
});

test("RUNTIME_PACKAGES is the bundle's external list in scripts/build.mjs", () => {
  const build = readFileSync(join(ROOT, "scripts/build.mjs"), "utf8");
  for (const m of build.matchAll(/external: (\[[^\]]*\])/g)) {
    if (m[1]!.includes("./")) continue;
    assert.deepEqual(JSON.parse(m[1]!), [...RUNTIME_PACKAGES]);
  }
});

test("stateLocationProblems (the same walk as the installation check): owners, sticky /tmp only on the way, links checked then followed, missing parts end the walk", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-state-loc-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  assert.deepEqual(stateLocationProblems(join(dir, "missing", "deeper", "keys"), { owners: [0] }), [], "root's directories, the rest to be created");
  assert.deepEqual(
    stateLocationProblems(join(tmpdir(), "keys"), { owners: [0] }).map((p) => [p.path, p.reason.replace(/ \(.*/, "")]),
    [[tmpdir(), "world-writable"]],
    "a sticky world-writable directory is not enough where the files are created",
  );
  mkdirSync(join(dir, "theirs"));
  chownSync(join(dir, "theirs"), 4242, 4242);
  symlinkSync(join(dir, "theirs"), join(dir, "link"));
  const problems = stateLocationProblems(join(dir, "link", "keys"), { owners: [0] });
  assert.deepEqual(
    problems.map((p) => p.path),
    [join(dir, "theirs")],
    "the link (root's) is fine, its target is not",
  );
  assert.match(problems[0]!.reason, /owned by uid 4242, not root/);
  assert.deepEqual(
    stateLocationProblems("relative/keys", { owners: [0] }).map((p) => p.reason),
    ["not an absolute path"],
  );
});
