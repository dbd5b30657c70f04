// The operating system's CSPRNG behind the Random port.

import type * as Crypto from "node:crypto";
import type { Random } from "../ports/index.js";
import { builtin } from "./builtin.js";

export const systemRandom: Random = {
  bytes: (count) => new Uint8Array(builtin<typeof Crypto>("node:crypto").randomBytes(count)),
};
