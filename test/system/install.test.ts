// The README's install commands, run literally: built from a copy of this checkout, installed as
// root without sudo on the PATH into a temporary npm prefix (npm_config_prefix; the machine's
// global npm is untouched), and the installed otpgate runs, is root's throughout and passes the
// install-trust check of setup and doctor.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { installProblems } from "../../src/platform/trusted-path.js";
import { privateSshd } from "../helpers/sshd.js";
import { ROOT, systemReady, TRUSTED_BASE, tempDir, throwawayUser, uniqueName } from "../helpers/system.js";

/** The sh block right after `<!-- readme-install:NAME -->` in the README. */
function readmeBlock(readme: string, name: string): string {
  const m = new RegExp(`<!-- readme-install:${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `README has no readme-install:${name} block`);
  return m[1]!;
}

test("README install: the root commands work as written without sudo, the sudo ones as a user with sudo, and both give a root-owned, trusted otpgate", { timeout: 900_000 }, (t) => {
  if (!systemReady(t, [])) return;
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const build = readmeBlock(readme, "build");
  const asRoot = readmeBlock(readme, "root");
  const withSudo = readmeBlock(readme, "sudo");
  assert.equal(withSudo.replace(/^sudo /gm, ""), asRoot, "the sudo lines are the root lines with sudo in front");
  assert.doesNotMatch(asRoot, /\bsudo\b/);
  assert.doesNotMatch(build + asRoot, /install -g \.(\s|$)/, "never a link to the checkout");
  const opening = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  for (const line of [build, withSudo.split("\n")[0]!]) assert.ok(opening.includes(line.trim()), `the README's opening block uses the same command: ${line.trim()}`);
  assert.doesNotMatch(readme, /npm install -g \.(\s|$)/m);

  // Under a root-only directory (TRUSTED_BASE): one in /tmp, or a checkout there, would be refused.
  const base = mkdtempSync(join(TRUSTED_BASE, "install-"));
  chmodSync(base, 0o755);
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const checkout = join(base, "checkout");
  for (const f of ["package.json", "package-lock.json", "tsconfig.json", "README.md", "src", "scripts", "test", "bench"]) cpSync(join(ROOT, f), join(checkout, f), { recursive: true });
  const prefix = join(base, "prefix");
  // root's usual PATH as on a box without sudo: every program of those directories but sudo
  const bin = join(base, "bin");
  mkdirSync(bin);
  for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      if (/^sudo/.test(name) || existsSync(join(bin, name))) continue;
      symlinkSync(join(dir, name), join(bin, name));
    }
  }
  mkdirSync(join(base, "home"), { mode: 0o700 });
  const env: NodeJS.ProcessEnv = {
    PATH: `${prefix}/bin:${bin}`,
    HOME: join(base, "home"),
    npm_config_prefix: prefix,
    npm_config_cache: "/root/.npm",
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
  };
  // the machine's CA store (a TLS-inspecting proxy may sit between here and the registry)
  if (existsSync("/etc/ssl/certs/ca-certificates.crt")) env.npm_config_cafile = "/etc/ssl/certs/ca-certificates.crt";
  const sh = (script: string) => spawnSync("/bin/sh", ["-e", "-c", script], { cwd: checkout, env, encoding: "utf8", timeout: 600_000 });
  assert.notEqual(sh("command -v sudo").status, 0, "no sudo on this PATH");
  assert.match(sh("sudo true").stderr, /sudo: (command )?not found/, "what a user without sudo sees");

  const built = sh(build);
  assert.equal(built.status, 0, built.stdout + built.stderr);
  const installed = sh(asRoot);
  assert.equal(installed.status, 0, installed.stdout + installed.stderr);
  assert.match(installed.stdout, /^otpgate \d+\.\d+\.\d+$/m);

  const launcher = join(prefix, "bin/otpgate");
  assert.deepEqual(installProblems({ node: process.execPath, launcher }), [], "root-owned, writable by root only: the package, its dist/ and node_modules");
  const doctor = spawnSync(launcher, ["doctor", "--json", "--user", "root"], { env, encoding: "utf8" });
  const findings = JSON.parse(doctor.stdout) as { check: string; severity: string; message: string }[];
  const install = findings.filter((f) => f.check === "install");
  assert.deepEqual(
    install.map((f) => f.severity),
    ["ok"],
    doctor.stdout,
  );
  // setup accepts it for a PAM line
  const s = privateSshd(tempDir(t));
  t.after(() => s.cleanup());
  const setup = spawnSync(launcher, ["setup", "ssh", "--dry-run", "--root", s.root, "--service", s.service, "--sshd", s.sshd], { env, encoding: "utf8" });
  assert.equal(setup.status, 0, setup.stdout + setup.stderr);
  assert.match(setup.stdout, new RegExp(`${prefix}/lib/node_modules/otpgate/dist/otpgate\\.cjs pam`));

  // The sudo lines, as a user with sudo. sudo resets the environment; this user's sudoers entry
  // keeps the temporary prefix (so the machine's global npm stays untouched) and puts its bin/ on
  // secure_path, where npm's usual global bin (/usr/local/bin) is on a fresh Debian.
  if (!existsSync("/usr/bin/sudo")) return;
  const user = throwawayUser(t);
  const sudoPrefix = join(base, "prefix-sudo");
  const sudoers = join("/etc/sudoers.d", uniqueName("otpgate-test"));
  const kept = ["npm_config_prefix", "npm_config_cache", "npm_config_cafile", "npm_config_update_notifier", "npm_config_fund", "npm_config_audit"];
  writeFileSync(
    sudoers,
    `Defaults:${user.name} env_keep += "${kept.join(" ")}", secure_path="${sudoPrefix}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n${user.name} ALL=(root) NOPASSWD: ALL\n`,
    { mode: 0o440 },
  );
  t.after(() => rmSync(sudoers, { force: true }));
  const check = spawnSync("visudo", ["-cf", sudoers], { encoding: "utf8" });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const sudoEnv: NodeJS.ProcessEnv = { ...env, PATH: "/usr/local/bin:/usr/bin:/bin", HOME: user.home, npm_config_prefix: sudoPrefix };
  const viaSudo = spawnSync("/bin/sh", ["-e", "-c", withSudo], { cwd: checkout, env: sudoEnv, uid: user.uid, gid: user.gid, encoding: "utf8", timeout: 600_000 });
  assert.equal(viaSudo.status, 0, viaSudo.stdout + viaSudo.stderr);
  assert.match(viaSudo.stdout, /^otpgate \d+\.\d+\.\d+$/m);
  assert.deepEqual(installProblems({ node: process.execPath, launcher: join(sudoPrefix, "bin/otpgate") }), [], "installed through sudo: root's throughout");
});
