// Build: type-check and compile everything (src, test, bench) to build/ with tsc, then bundle the
// CLI into one CommonJS file, dist/otpgate.cjs: one file and no module resolution at start-up is
// the fastest way to start Node (see README, "Performance").
import { execFileSync } from "node:child_process";
import { chmodSync, rmSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const esbuild = require("esbuild");

rmSync("build", { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.json"], { stdio: "inherit" });

esbuild.buildSync({
  entryPoints: ["src/bin/otpgate.ts"],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile: "dist/otpgate.cjs",
  banner: { js: "#!/usr/bin/env node" },
  legalComments: "none",
  logLevel: "warning",
});
chmodSync("dist/otpgate.cjs", 0o755);
