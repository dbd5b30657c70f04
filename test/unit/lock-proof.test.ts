// platform/account-lock: a name held by anything that cannot prove it read the state file is
// skipped, real holders still exclude each other, and all names squatted never locks the owner out.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, createConnection, type Server } from "node:net";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { LockTimeoutError } from "../../src/core/errors.js";
import { accountLockName, acquireAccountLock, lockProof, MAX_GENERATIONS } from "../../src/platform/account-lock.js";
import { lockName } from "../../src/platform/lock.js";
import { ROOT } from "../helpers/system.js";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
let seq = 0;
const location = () => ["test", String(process.pid), `proof-${Date.now()}-${seq++}`];

/** A squatter listening on `name`: answers each connection with `answer(nonce)`, or never (null). */
async function squatter(t: TestContext, name: string, answer: ((nonce: Buffer) => Buffer | Promise<Buffer>) | null): Promise<Server> {
  const server = createServer((sock) => {
    sock.on("error", () => {});
    if (!answer) return;
    sock.once("data", async (d: Buffer) => sock.end(await answer(d.subarray(0, 16))));
  });
  await new Promise<void>((r) => server.listen({ path: name, exclusive: true }, () => r()));
  t.after(() => {
    server.close();
  });
  return server;
}

test("generation 0 is the name lockName always gave; generations and secrets give different names", () => {
  const loc = ["1", "2", "ga"];
  assert.equal(accountLockName(SECRET, loc, 0), lockName(SECRET, loc));
  assert.notEqual(accountLockName(SECRET, loc, 1), accountLockName(SECRET, loc, 0));
  assert.notEqual(lockProof(SECRET, "\0a", Buffer.alloc(16)).toString("hex"), lockProof(SECRET, "\0b", Buffer.alloc(16)).toString("hex"), "the proof is bound to the name");
  assert.notEqual(lockProof(SECRET, "\0a", Buffer.alloc(16)).toString("hex"), lockProof("OTHER", "\0a", Buffer.alloc(16)).toString("hex"));
});

test("a squatter answering garbage on generation 0: skipped and reported; real contenders exclude each other on generation 1", async (t) => {
  const loc = location();
  await squatter(t, accountLockName(SECRET, loc, 0), () => Buffer.alloc(20));
  const squatted: number[] = [];
  const first = await acquireAccountLock(SECRET, loc, { onSquatted: (g) => squatted.push(g) });
  assert.equal(first.generation, 1);
  assert.deepEqual(squatted, [0]);
  await assert.rejects(acquireAccountLock(SECRET, loc, { timeoutMs: 200 }), LockTimeoutError, "the real holder of generation 1 proves itself: the second waits");
  await first.release();
  const again = await acquireAccountLock(SECRET, loc, { timeoutMs: 500 });
  assert.equal(again.generation, 1);
  await again.release();
});

test("a squatter proving with another secret, or relaying a real holder's proof for another name, is still a squatter", async (t) => {
  const other = location();
  const o0 = accountLockName(SECRET, other, 0);
  await squatter(t, o0, (nonce) => lockProof("NOT-THE-SECRET", o0, nonce));
  const squattedOther: number[] = [];
  const heldOther = await acquireAccountLock(SECRET, other, { onSquatted: (g) => squattedOther.push(g) });
  assert.deepEqual([heldOther.generation, squattedOther], [1, [0]]);
  await heldOther.release();

  // A live relay: the squatter of generation 0 forwards each nonce to the real holder of
  // generation 1 and hands back its (valid, but for generation 1) proof.
  const loc = location();
  const g0 = accountLockName(SECRET, loc, 0);
  const g1 = accountLockName(SECRET, loc, 1);
  const relay = (nonce: Buffer) =>
    new Promise<Buffer>((resolve) => {
      const sock = createConnection({ path: g1 }, () => sock.write(nonce));
      let got = Buffer.alloc(0);
      sock.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
      sock.on("end", () => resolve(got));
      sock.on("error", () => resolve(Buffer.alloc(0)));
    });
  await squatter(t, g0, relay);
  const holder = await acquireAccountLock(SECRET, loc);
  assert.equal(holder.generation, 1);
  const squatted: number[] = [];
  await assert.rejects(acquireAccountLock(SECRET, loc, { timeoutMs: 300, onSquatted: (g) => squatted.push(g) }), LockTimeoutError);
  assert.deepEqual(squatted, [0], "the relayed proof does not pass for generation 0; the contender waits on generation 1");
  await holder.release();
});

test("a silent squatter costs about one challenge timeout, not the lock timeout", async (t) => {
  const loc = location();
  await squatter(t, accountLockName(SECRET, loc, 0), null);
  const started = Date.now();
  const held = await acquireAccountLock(SECRET, loc, { timeoutMs: 5000 });
  const took = Date.now() - started;
  assert.equal(held.generation, 1);
  assert.ok(took >= 900 && took < 2500, `took ${took} ms`);
  await held.release();
});

// Node 20 binds an abstract name NUL-padded to the whole sun_path (108 bytes): the squatter binds that.
test("a squatter that binds without listening (connections refused) is skipped", async (t) => {
  const loc = location();
  const name = accountLockName(SECRET, loc, 0);
  const child = spawn("python3", [join(ROOT, "test/helpers/lock_squatter.py"), "bind", Buffer.from(name.slice(1).padEnd(107, "\0"), "latin1").toString("hex")], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  t.after(() => {
    child.kill("SIGKILL");
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
    child.on("exit", () => reject(new Error("python3 squatter did not start")));
  });
  const squatted: number[] = [];
  const held = await acquireAccountLock(SECRET, loc, { onSquatted: (g) => squatted.push(g) });
  assert.equal(held.generation, 1);
  assert.deepEqual(squatted, [0]);
  await held.release();
});

test("every generation squatted: no lock, reported, and the caller proceeds (the owner is not locked out)", async (t) => {
  const loc = location();
  for (let g = 0; g < MAX_GENERATIONS; g++) await squatter(t, accountLockName(SECRET, loc, g), () => Buffer.alloc(20, 7));
  let unlocked = 0;
  const squatted: number[] = [];
  const held = await acquireAccountLock(SECRET, loc, { onSquatted: (g) => squatted.push(g), onUnlocked: () => unlocked++ });
  assert.equal(held.generation, null);
  assert.deepEqual(squatted, [0, 1, 2, 3]);
  assert.equal(unlocked, 1);
  await held.release();
});

test("the holder answers challenges from another process and its release frees the name at once", async () => {
  const loc = location();
  const held = await acquireAccountLock(SECRET, loc);
  assert.equal(held.generation, 0);
  const name = accountLockName(SECRET, loc, 0);
  const nonce = Buffer.alloc(16, 3);
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const sock = createConnection({ path: name }, () => sock.write(nonce));
    let got = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
    sock.on("end", () => resolve(got));
    sock.on("error", reject);
  });
  assert.deepEqual(answer, lockProof(SECRET, name, nonce));
  // A contender that connects and never sends its nonce does not keep the release waiting.
  const idle = createConnection({ path: name });
  idle.on("error", () => {});
  await new Promise((r) => idle.once("connect", r));
  const started = Date.now();
  await held.release();
  assert.ok(Date.now() - started < 500, "release does not wait for idle connections");
  idle.destroy();
  const again = await acquireAccountLock(SECRET, loc, { timeoutMs: 300 });
  assert.equal(again.generation, 0);
  await again.release();
});
