// The per-account lock of a state file, safe against squatting by other local users.
//
// The lock is a node:net server listening on a Linux abstract socket (platform/lock.ts explains
// why a socket: the kernel frees it when the holder dies, so there is never a stale lock). Abstract
// names are public: every local user can read them in /proc/net/unix and bind one first. So a name
// being taken proves nothing. The holder proves it is otpgate: a contender that finds the name
// taken connects and sends a random 16-byte nonce; the holder answers
// HMAC-SHA1(key from the state file's secret line, name || nonce) and closes. Only a process that
// read the state file (its owner, or root acting as the owner) can answer; the name is in the MAC,
// so a squatter cannot relay the proof of a real holder of another name.
//
// A valid proof: a real login holds it; wait and retry the same name. No proof (refused, or closed
// unanswered, GONE_ROUNDS times a few ms apart while the name stays bound, i.e. bound but not
// listening; a wrong answer; no answer within CHALLENGE_MS): the name
// is squatted; it is reported (onSquatted) and the next generation's name is tried (HMAC over the
// location and the generation). Every real contender skips the same squatted names, so real
// processes still exclude each other.
//
// Past MAX_GENERATIONS squatted names, the login is NOT refused (that would hand the attacker the
// outage the lock is meant to prevent): it proceeds without the lock, under the store's
// compare-and-swap commit alone (stores/file-store.ts), which still lets at most one of two racing
// commits of the same read succeed (a fixed O_EXCL temp name plus a version check after writing it);
// a racing loser gets a conflict or an error, never a second acceptance. Without the lock, two
// concurrent logins may both fail, which is the cost of an attacker holding every name, and the
// store logs it. The same degraded mode is what an attacker gets by releasing a squatted name
// between two contenders' checks (one may then hold generation 0 while the other holds 1).
//
// node:net only: the private binding of the fast path (platform/node-internals) cannot answer proofs
// without using more internals, so the login path pays the ~3 ms of loading node:net. Safety first.

import type * as Crypto from "node:crypto";
import type * as Net from "node:net";
import { LockTimeoutError } from "../core/errors.js";
import { createSha1Hmac } from "../core/sha1.js";
import { builtin } from "./builtin.js";
import type { HeldLock } from "./lock.js";

/** How many lock names (generations) are tried before proceeding without a lock. */
export const MAX_GENERATIONS = 4;
/** How long a contender waits for a holder's proof. */
export const CHALLENGE_MS = 1000;
const NONCE_BYTES = 16;
const GONE_ROUNDS = 5;
const PROOF_BYTES = 20;

/** A held account lock; `generation` null when every name was squatted and no lock is held. */
export interface AccountLock extends HeldLock {
  readonly generation: number | null;
}

export interface AccountLockOptions {
  /** Give up waiting for a real holder after this long (default 5 s). */
  readonly timeoutMs?: number;
  /** Called once per squatted name found (the store logs it). */
  readonly onSquatted?: (generation: number) => void;
  /** Called when every generation is squatted and the caller proceeds without a lock. */
  readonly onUnlocked?: () => void;
}

const enc = (s: string) => Buffer.from(s, "latin1");

/** The abstract socket name of generation `g` (g = 0 is platform/lock.ts lockName). */
export function accountLockName(secretLine: string, location: readonly string[], generation: number): string {
  const mac = createSha1Hmac(enc("otpgate-lock-v1\0" + secretLine));
  const parts = generation === 0 ? location : [...location, `g${generation}`];
  return `\0otpgate-${Buffer.from(mac.mac(enc(parts.join("\0")))).toString("hex")}`;
}

/** What a holder of `name` answers to `nonce`. */
export function lockProof(secretLine: string, name: string, nonce: Uint8Array): Buffer {
  const mac = createSha1Hmac(enc("otpgate-lock-proof-v1\0" + secretLine));
  return Buffer.from(mac.mac(Buffer.concat([enc(name), Buffer.from([0]), nonce])));
}

/** Listen on `name`, answering each challenge with its proof. null when the name is taken. */
function listenProving(name: string, prove: (nonce: Uint8Array) => Buffer): Promise<HeldLock | null> {
  const net = builtin<typeof Net>("node:net");
  // Connections that have not sent their nonce yet: dropped at release (answered ones finish).
  const waiting = new Set<Net.Socket>();
  const server = net.createServer((sock) => {
    sock.unref();
    waiting.add(sock);
    sock.on("close", () => waiting.delete(sock));
    sock.on("error", () => {});
    sock.setTimeout(CHALLENGE_MS, () => sock.destroy());
    let got = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < NONCE_BYTES) return;
      sock.off("data", onData);
      waiting.delete(sock);
      sock.end(prove(got.subarray(0, NONCE_BYTES)));
    };
    sock.on("data", onData);
  });
  server.unref();
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => (err.code === "EADDRINUSE" ? resolve(null) : reject(err)));
    server.once("listening", () =>
      resolve({
        // close() frees the name at once (the listening fd is closed synchronously); the close
        // event would also wait for answered connections to finish, which nobody needs.
        release: () =>
          new Promise<void>((done) => {
            server.close();
            for (const s of waiting) s.destroy();
            setImmediate(done);
          }),
      }),
    );
    server.listen({ path: name, exclusive: true });
  });
}

type Verdict = "holder" | "gone" | "squatter";

/** Ask whoever holds `name` for its proof. "gone": nobody listens (released, or bound only). */
function challenge(name: string, expected: (nonce: Uint8Array) => Buffer): Promise<Verdict> {
  const net = builtin<typeof Net>("node:net");
  const nonce = builtin<typeof Crypto>("node:crypto").randomBytes(NONCE_BYTES);
  const want = expected(nonce);
  return new Promise((resolve) => {
    let settled = false;
    let got = Buffer.alloc(0);
    const sock = net.createConnection({ path: name });
    const finish = (v: Verdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish("squatter"), CHALLENGE_MS);
    timer.unref?.();
    sock.on("connect", () => sock.write(nonce));
    sock.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= PROOF_BYTES) finish(got.length === PROOF_BYTES && got.equals(want) ? "holder" : "squatter");
    });
    // Closed with nothing said: a holder releasing at that moment (or a squatter: after a few
    // such rounds the caller calls it one). Some bytes that are not the proof: a squatter.
    const ended = () => finish(got.length === 0 ? "gone" : got.length === PROOF_BYTES && got.equals(want) ? "holder" : "squatter");
    sock.on("end", ended);
    sock.on("error", (err: NodeJS.ErrnoException) => {
      const refused = err.code === "ECONNREFUSED" || err.code === "ENOENT" || err.code === "EAGAIN" || err.code === "ECONNRESET" || err.code === "EPIPE";
      finish(refused && got.length === 0 ? "gone" : "squatter");
    });
    sock.on("close", ended);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Lock the state file whose secret line and location are given; see the header. */
export async function acquireAccountLock(secretLine: string, location: readonly string[], options: AccountLockOptions = {}): Promise<AccountLock> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let delay = 2;
  let generation = 0;
  while (generation < MAX_GENERATIONS) {
    const name = accountLockName(secretLine, location, generation);
    const prove = (nonce: Uint8Array) => lockProof(secretLine, name, nonce);
    const held = await listenProving(name, prove);
    if (held) return { generation, release: held.release };
    let verdict = await challenge(name, prove);
    // "gone": released just now (the name may already be someone else's), or bound and never
    // listening. Bind again; after GONE_ROUNDS such rounds in a row, it is a squatter.
    for (let round = 1; verdict === "gone"; round++) {
      if (round > GONE_ROUNDS) verdict = "squatter";
      else {
        await sleep(1 + Math.floor(Math.random() * 4));
        const again = await listenProving(name, prove);
        if (again) return { generation, release: again.release };
        verdict = await challenge(name, prove);
      }
    }
    if (verdict === "squatter") {
      options.onSquatted?.(generation);
      generation++;
      continue;
    }
    if (Date.now() >= deadline) {
      throw new LockTimeoutError("another login for this account has held its lock for too long; try again, and if it persists look for a hung otpgate process (ps -ef | grep otpgate)");
    }
    await sleep(delay + Math.floor(Math.random() * delay));
    delay = Math.min(delay * 2, 50);
  }
  options.onUnlocked?.();
  return { generation: null, release: async () => {} };
}
