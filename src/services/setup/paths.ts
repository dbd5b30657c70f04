// Paths under --root, and reading a file that may not exist.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const inRoot = (root: string, path: string): string => (root === "/" ? path : join(root, path));

export const readIfExists = (path: string): string | null => (existsSync(path) ? readFileSync(path, "latin1") : null);
