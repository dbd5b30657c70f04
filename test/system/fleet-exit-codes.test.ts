// One rule for every fleet command (H3's note): a database that cannot be reached is exit 2
// (a configuration/environment error: nothing was decided), with the same message; exit 1 is
// kept for a refusal (not enrolled, a conflict).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { keyFile } from "../helpers/fleet.js";
import { runCli, systemReady } from "../helpers/system.js";

test("an unreachable database is exit 2 with one message for db and account commands alike", (t) => {
  if (!systemReady(t, [])) return;
  const keys = keyFile(t);
  const store = ["--store", "postgres://postgres@127.0.0.1:1/otpgate", "--db-key-file", keys];
  const commands = [
    ["db", "migrate", ...store],
    ["db", "audit", ...store],
    ["db", "rotate-key", ...store],
    ["db", "import", ...store, "--user", "root"],
    ["db", "export", "nobody", ...store],
    ["status", "--all", ...store],
    ["codes", "--user", "nobody", ...store],
  ];
  for (const argv of commands) {
    const r = runCli(argv);
    assert.equal(r.status, 2, `${argv.slice(0, 2).join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /the fleet database cannot be used right now \(.*\); check --store, that PostgreSQL runs and can be reached from this host, then try again/, argv.join(" "));
  }
});

test("db --help and the README state the rule", () => {
  const r = runCli(["db", "--help"]);
  assert.match(r.stdout, /Exit status: 0 done, 1 refused \(not in the database, a conflict\), 2 usage or configuration error,\s+the database cannot be reached included/);
  const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
  assert.match(readme, /every command with `--store`: exit 2 when the database cannot be reached/);
});
