// node:crypto HMAC for SHA-256 and SHA-512 (SHA-1 runs in the core's own keyed implementation).

import { createHmac, createSecretKey } from "node:crypto";
import type { MacFactory } from "../core/otp.js";

export const nodeMacFactory: MacFactory = (algorithm, key) => {
  const keyObject = createSecretKey(key);
  const name = algorithm === "SHA256" ? "sha256" : "sha512";
  return (message) => new Uint8Array(createHmac(name, keyObject).update(message).digest());
};
