// Writes the systemd units shipped in the package (packaging/systemd/) from the same generator
// otpgate setup uses (src/admin/setup/systemd-unit.ts), for a global npm install on Debian.
// Run after a build: node scripts/write-units.mjs (test/system/server-units.test.ts checks they agree).
import { writeFileSync } from "node:fs";
import { shippedUnits } from "../build/src/admin/setup/shipped-units.js";

for (const [name, text] of Object.entries(shippedUnits())) writeFileSync(`packaging/systemd/${name}`, text);
