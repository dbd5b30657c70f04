// The pure layers stay pure: no I/O, no clock, no randomness, no process access in core/ and formats/.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../helpers/system.js";

const FORBIDDEN = [/from "node:/, /\bprocess\./, /\bconsole\./, /Date\.now/, /Math\.random/, /require\(/];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : [join(dir, e.name)]));
}

test("src/core and src/formats import nothing from Node and touch no clock, randomness or process", () => {
  for (const dir of ["src/core", "src/formats"]) {
    for (const file of sources(dir)) {
      const name = file;
      const source = readFileSync(join(ROOT, file), "utf8");
      for (const pattern of FORBIDDEN) assert.doesNotMatch(source, pattern, name);
      for (const m of source.matchAll(/from "(\.[^"]+)"/g)) {
        assert.doesNotMatch(m[1]!, /(adapters|services|stores|platform)\//, `${name} imports ${m[1]}`);
      }
    }
  }
});
