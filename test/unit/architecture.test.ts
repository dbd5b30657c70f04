// The pure layers stay pure: no I/O, no clock, no randomness, no process access in core/ and formats/.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../helpers/system.js";

const FORBIDDEN = [/from "node:/, /\bprocess\./, /\bconsole\./, /Date\.now/, /Math\.random/, /require\(/];

test("src/core and src/formats import nothing from Node and touch no clock, randomness or process", () => {
  for (const dir of ["src/core", "src/formats"]) {
    for (const name of readdirSync(join(ROOT, dir))) {
      const source = readFileSync(join(ROOT, dir, name), "utf8");
      for (const pattern of FORBIDDEN) assert.doesNotMatch(source, pattern, `${dir}/${name}`);
      for (const m of source.matchAll(/from "(\.[^"]+)"/g)) {
        assert.doesNotMatch(m[1]!, /(adapters|services|stores|platform)\//, `${dir}/${name} imports ${m[1]}`);
      }
    }
  }
});
