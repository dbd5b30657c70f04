// node:crypto HMAC for SHA-256 and SHA-512 (SHA-1 runs in the core's own keyed implementation);
// node:crypto is loaded only when such a key is used.

import type * as Crypto from "node:crypto";
import type { MacFactory } from "../core/otp.js";
import { builtin } from "./builtin.js";

export const nodeMacFactory: MacFactory = (algorithm, key) => {
  const crypto = builtin<typeof Crypto>("node:crypto");
  const keyObject = crypto.createSecretKey(key);
  const name = algorithm === "SHA256" ? "sha256" : "sha512";
  return (message) => new Uint8Array(crypto.createHmac(name, keyObject).update(message).digest());
};
