// Build: type-check and compile everything (src, test, bench) to build/ with tsc, then bundle the
// CLI into one CommonJS file, dist/otpgate-core.cjs (one file, no module resolution at start-up:
// the fastest way to start Node; the QR library and the web gateway go to their own files,
// dist/otpgate-qr.cjs and dist/otpgate-gateway.cjs, loaded on demand), warm it up once to record V8's code cache next to it, and install
// the launcher dist/otpgate.cjs that uses that cache (see README, "Performance").
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const esbuild = require("esbuild");

rmSync("build", { recursive: true, force: true });
rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.json"], { stdio: "inherit" });

await esbuild.build({
  entryPoints: ["src/bin/otpgate.ts"],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile: "dist/otpgate-core.cjs",
  // A native module: loaded from node_modules at run time (otpgate passwd, the password factor).
  external: ["@node-rs/argon2"],
  // import() becomes require(): the launcher runs the bundle in a vm.Script, which has no ESM loader.
  supported: { "dynamic-import": false },
  banner: { js: "#!/usr/bin/env node" },
  legalComments: "none",
  logLevel: "warning",
  plugins: [
    {
      // The QR library and the gateway are big and the login path never needs them: own files.
      name: "separate-bundles",
      setup(build) {
        build.onResolve({ filter: /\/qr-lib\.js$/ }, () => ({ path: "./otpgate-qr.cjs", external: true }));
        build.onResolve({ filter: /\/gateway-entry\.js$/ }, () => ({ path: "./otpgate-gateway.cjs", external: true }));
        build.onResolve({ filter: /\/server-main\.js$/ }, () => ({ path: "./otpgate-server.cjs", external: true }));
        // The fleet store (node-postgres) and its commands: dist/otpgate-fleet.cjs, loaded on demand.
        build.onResolve({ filter: /\/fleet-main\.js$|\/stores\/pg\/connect\.js$/ }, () => ({ path: "./otpgate-fleet.cjs", external: true }));
      },
    },
  ],
});
esbuild.buildSync({
  entryPoints: ["src/adapters/http/gateway-entry.ts"],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile: "dist/otpgate-gateway.cjs",
  external: ["@node-rs/argon2"],
  legalComments: "none",
  logLevel: "warning",
});
esbuild.buildSync({
  entryPoints: ["src/adapters/cli/commands/server-main.ts"],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile: "dist/otpgate-server.cjs",
  // The server opens the fleet store (node-postgres): its optional native binding and Cloudflare shim stay out.
  external: ["pg-native", "pg-cloudflare", "cloudflare:sockets"],
  legalComments: "none",
  logLevel: "warning",
});
esbuild.buildSync({
  entryPoints: ["src/adapters/cli/commands/fleet-main.ts"],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile: "dist/otpgate-fleet.cjs",
  // node-postgres' optional native binding and the Cloudflare socket shim: never used here.
  external: ["pg-native", "pg-cloudflare", "cloudflare:sockets"],
  legalComments: "none",
  logLevel: "warning",
});
esbuild.buildSync({
  entryPoints: ["src/platform/qr-lib.ts"],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile: "dist/otpgate-qr.cjs",
  legalComments: "none",
  logLevel: "warning",
});
chmodSync("dist/otpgate-core.cjs", 0o755);
copyFileSync("scripts/launcher.cjs", "dist/otpgate.cjs");
chmodSync("dist/otpgate.cjs", 0o755);

// Warm-up: run the bundle through typical verifications (wrong code with bookkeeping written,
// then an emergency code) on a throwaway file, then save the code cache of everything compiled.
const dir = mkdtempSync(join(tmpdir(), "otpgate-build-"));
try {
  const state = join(dir, "state");
  writeFileSync(state, 'JBSWY3DPEHPK3PXP\n" RATE_LIMIT 10 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n', { mode: 0o600 });
  const warm = `
    const { readFileSync, writeFileSync } = require("node:fs");
    const { Script } = require("node:vm");
    const file = ${JSON.stringify(join(process.cwd(), "dist/otpgate-core.cjs"))};
    const source = readFileSync(file, "utf8").replace(/^#!.*/, "");
    const script = new Script("(function (exports, require, module, __filename, __dirname) {" + source + "\\n})", { filename: file });
    const fn = script.runInThisContext();
    const runs = [["verify", "-s", ${JSON.stringify(state)}, "000000"], ["verify", "--json", "-s", ${JSON.stringify(state)}, "12345678"], ["--help"]];
    (async () => {
      for (const args of runs) {
        process.argv = [process.argv[0], file, ...args];
        fn({}, require, { exports: {} }, file, require("node:path").dirname(file));
        await new Promise((r) => setTimeout(r, 100));
      }
      writeFileSync(file + ".cache", script.createCachedData());
      process.exitCode = 0;
    })();`;
  execFileSync(process.execPath, ["-e", warm], { stdio: ["ignore", "ignore", "ignore"] });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
