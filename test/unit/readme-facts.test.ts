// The README says what the code does: the gateway's state_files rule and default, the ports it
// lists as defaults, and the flags its command reference names for the commands whose --help is
// generated from their option table.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { GatewayConfigError, gatewayConfigKeys, parseGatewayConfig } from "../../src/adapters/http/gateway-config.js";
import type { OptionTable } from "../../src/adapters/cli/help.js";
import { ROOT } from "../helpers/system.js";

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const BASE = "public_url: https://app.example.com\n";

/** The gateway configuration table's row for `key`: [default, meaning]. */
function row(key: string): [string, string] {
  const m = new RegExp(`^\\| \`${key}\` \\| (.*?) \\| (.*?) \\|$`, "m").exec(README);
  assert.ok(m, `README has no row for ${key}`);
  return [m[1]!, m[2]!];
}

function refused(yaml: string): boolean {
  try {
    parseGatewayConfig(yaml, "gw.yaml");
    return false;
  } catch (err) {
    assert.ok(err instanceof GatewayConfigError, String(err));
    return true;
  }
}

test("README's state_files row: the default the gateway uses, and the patterns it refuses and takes", () => {
  const [fallback, meaning] = row("state_files");
  assert.equal(fallback, `\`${parseGatewayConfig(BASE).stateFiles}\``);
  assert.match(meaning, /must contain `~`, `\$\{HOME\}` or `\$\{USER\}`/);
  assert.equal(refused(`${BASE}state_files: /var/lib/otpgate/state\n`), true, "a pattern without ~, ${HOME} or ${USER} is refused");
  for (const ok of ["~/.google_authenticator", "/var/lib/otpgate/${USER}", "${HOME}/.ga"]) assert.equal(refused(`${BASE}state_files: "${ok}"\n`), false, `${ok} is taken`);
});

test("README's default ports are the code's: the gateway's listen, otpgate radius and setup's --radius-port", async () => {
  const c = parseGatewayConfig(BASE);
  assert.equal(row("listen")[0], `\`${c.listen.host}:${c.listen.port}\``);
  const { help: radiusHelp } = (await import("../../src/adapters/cli/commands/server-main.js")) as { help: string };
  const setup = (await import("../../src/adapters/cli/commands/setup.js")) as { options: OptionTable };
  const port = /--radius-port N` \(default (\d+)\)/.exec(README)?.[1];
  assert.ok(port, "README names setup's --radius-port default");
  assert.match(setup.options["radius-port"]!.help!, new RegExp(`\\(default ${port}\\)`));
  assert.match(radiusHelp, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.match(README, new RegExp(`^### \`otpgate (server|radius)\\b[^\\n]*--listen 127\\.0\\.0\\.1:${port}\\b`, "m"));
});

/** The README section of `### \`otpgate NAME ...` up to the next heading. */
function section(name: string): string {
  const start = README.search(new RegExp(`^### \`otpgate ${name}\\b`, "m"));
  assert.ok(start >= 0, `README has no section for otpgate ${name}`);
  const rest = README.slice(start + 4);
  const end = rest.search(/^#{2,3} /m);
  return end < 0 ? rest : rest.slice(0, end);
}

test("every flag the README's reference names for a converted command is one it accepts", async () => {
  for (const name of ["enroll", "setup", "doctor", "status", "codes", "qr"]) {
    const { options } = (await import(`../../src/adapters/cli/commands/${name}.js`)) as { options: OptionTable };
    const long = new Set(Object.keys(options));
    const short = new Set(Object.values(options).flatMap((o) => (o.short ? [o.short] : [])));
    // Other programs' flags the sections quote, and the top-level --version.
    const text = section(name)
      .replace(/sshd -[tT]\b/g, "")
      .replace(/-u NODE_(OPTIONS|PATH)/g, "")
      .replace(/otpgate --version/g, "")
      .replace(/`--version` \(HEAD\)/g, "");
    for (const m of text.matchAll(/(?<![\w$.-])(--[a-z][a-z0-9-]*|-[A-Za-z])(?![\w-])/g)) {
      const flag = m[1]!;
      const known = flag.startsWith("--") ? long.has(flag.slice(2)) : short.has(flag.slice(1));
      assert.ok(known, `README's section on otpgate ${name} names ${flag}, which otpgate ${name} does not accept`);
    }
  }
});

test("README's gateway table has a row for every key the configuration accepts, and names every key of each section", () => {
  const sections = gatewayConfigKeys();
  for (const key of sections[""]!) row(key);
  for (const [section, keys] of Object.entries(sections)) {
    if (section === "") continue;
    const text = row(section).join(" ");
    for (const key of keys) assert.match(text, new RegExp(`\\b${key}\\b`), `README's ${section} row names ${section}.${key}`);
  }
});
