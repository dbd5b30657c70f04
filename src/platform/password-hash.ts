// argon2id password hashes as PHC strings ($argon2id$v=19$m=...,t=...,p=...), through @node-rs/argon2
// (the RustCrypto implementation, prebuilt per platform as an optional package: no compiler, no
// install script). Loaded on first use: only the gateway's password factor and otpgate passwd need
// it, never the SSH login path.
//
// Each hash or check takes 64 MiB and ~100 ms of CPU, so at most CONCURRENCY run at once and at most
// QUEUE wait; beyond that a check is refused at once (a flood of logins cannot exhaust memory).

import { ConfigError } from "../core/errors.js";

type Argon2 = typeof import("@node-rs/argon2");

/** RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes. */
export const HASH_PARAMS = { memoryCost: 65536, timeCost: 3, parallelism: 4 } as const;
/** Algorithm.Argon2id (a const enum in the library's types, so not importable as a value). */
const ARGON2ID = 2;
const CONCURRENCY = 2;
const QUEUE = 32;

let lib: Argon2 | undefined;
async function argon2(): Promise<Argon2> {
  if (lib) return lib;
  try {
    const mod = (await import("@node-rs/argon2")) as Argon2 & { default?: Argon2 };
    lib = mod.default ?? mod;
    return lib;
  } catch (err) {
    throw new ConfigError(`the argon2 library cannot be loaded (${(err as Error).message.split("\n")[0]}); reinstall otpgate with npm so its dependencies are there`);
  }
}

export class PasswordCheckBusy extends Error {
  override name = "PasswordCheckBusy";
}

let running = 0;
const waiting: (() => void)[] = [];

async function limited<T>(work: () => Promise<T>): Promise<T> {
  if (running < CONCURRENCY) running++;
  else if (waiting.length >= QUEUE) throw new PasswordCheckBusy("too many password checks at once");
  else await new Promise<void>((resolve) => waiting.push(resolve)); // the finishing check hands its slot over
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/**
 * The PHC string with its parameters in the reference order m, t, p, the only order libargon2's own
 * decoder (argon2 CLI, argon2-cffi, PHP) accepts; some libraries write m, p, t.
 */
export function canonicalPhc(hash: string): string {
  return hash.replace(/^(\$argon2id\$v=19\$)([^$]+)\$/, (_all, head: string, params: string) => {
    const p = new Map(params.split(",").map((kv) => kv.split("=") as [string, string]));
    return `${head}m=${p.get("m")},t=${p.get("t")},p=${p.get("p")}$`;
  });
}

export async function hashPassword(password: string): Promise<string> {
  const a = await argon2();
  const options = { algorithm: ARGON2ID, ...HASH_PARAMS } as NonNullable<Parameters<Argon2["hash"]>[1]>;
  return canonicalPhc(await limited(() => a.hash(password, options)));
}

/** True when `password` matches `hash`; false for a wrong password and for a malformed hash. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  const a = await argon2();
  return limited(async () => {
    try {
      return await a.verify(hash, password);
    } catch {
      return false;
    }
  });
}

let dummy: Promise<string> | undefined;

/** Spend the time of a real check when there is no hash to check (unknown user), so timing tells nothing. */
export async function verifyNothing(password: string): Promise<false> {
  dummy ??= hashPassword(Math.random().toString(36) + Date.now());
  await verifyPassword(await dummy, password);
  return false;
}
