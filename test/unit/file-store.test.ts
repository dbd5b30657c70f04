import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { StateFileError } from "../../src/core/errors.js";
import { acquireLock, lockName } from "../../src/platform/lock.js";
import { FileAccountStore, writeNewStateFile } from "../../src/stores/file-store.js";
import { ROOT, tempDir } from "../helpers/system.js";

const uid = process.geteuid?.() ?? 0;
const GOOD = 'JBSWY3DPEHPK3PXP\n" TOTP_AUTH\n12345678\n';
const store = (path: string, extra: Partial<ConstructorParameters<typeof FileAccountStore>[0]> = {}) =>
  new FileAccountStore({ path, owner: { uid, name: "me" }, strictOwner: true, allowedPerm: 0o600, ...extra });

async function refuses(path: string, pattern: RegExp, s = store(path)) {
  const before = existsSync(path) && statSync(path).isFile() ? readFileSync(path) : null;
  await assert.rejects(s.acquire(), (err: unknown) => err instanceof StateFileError && pattern.test(err.message));
  if (before) assert.deepEqual(readFileSync(path), before, "the file is unchanged");
}

test("refuses a symlink (never follows or replaces it), naming the fix", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "real"), GOOD, { mode: 0o600 });
  symlinkSync(join(dir, "real"), join(dir, "link"));
  await refuses(join(dir, "link"), /symbolic link.*replace it with the file itself/);
  assert.equal(readFileSync(join(dir, "real"), "latin1"), GOOD);
});

test("refuses directories, FIFOs, loose permissions, wrong owners, empty, oversized and binary files", async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, "dir"));
  await refuses(join(dir, "dir"), /is a directory/);
  spawnSync("mkfifo", [join(dir, "fifo")]);
  await refuses(join(dir, "fifo"), /not a regular file/);
  writeFileSync(join(dir, "open"), GOOD, { mode: 0o644 });
  chmodSync(join(dir, "open"), 0o644);
  await refuses(join(dir, "open"), /permissions 0644, more permissive than 0600.*chmod 600/);
  writeFileSync(join(dir, "owned"), GOOD, { mode: 0o600 });
  chownSync(join(dir, "owned"), 4242, 4242);
  await refuses(join(dir, "owned"), new RegExp(`must be owned by me \\(uid ${uid}\\), not uid 4242: run chown me`));
  writeFileSync(join(dir, "empty"), "", { mode: 0o600 });
  await refuses(join(dir, "empty"), /is empty/);
  writeFileSync(join(dir, "big"), Buffer.alloc(2 * 1024 * 1024, 0x41), { mode: 0o600 });
  await refuses(join(dir, "big"), /2097152 bytes; a state file is at most 65536 bytes/);
  writeFileSync(join(dir, "bin"), Buffer.from([0x41, 0x00, 0x0a, 0xff]), { mode: 0o600 });
  await refuses(join(dir, "bin"), /NUL bytes/);
});

test("no_strict_owner and allowed_perm relax exactly those checks", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "f");
  writeFileSync(path, GOOD, { mode: 0o640 });
  chmodSync(path, 0o640);
  chownSync(path, 4242, 4242);
  const s = await store(path, { strictOwner: false, allowedPerm: 0o640 }).acquire();
  assert.equal(s!.text, GOOD);
  await s!.release();
});

test("commit replaces atomically, keeps the mode, fsyncs, and leaves no temp file", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, ".google_authenticator");
  writeFileSync(path, GOOD, { mode: 0o400 });
  const inode = statSync(path).ino;
  const s = await store(path).acquire();
  assert.deepEqual(await s!.commit(GOOD.replace("12345678\n", "")), { ok: true });
  await s!.release();
  assert.equal(readFileSync(path, "latin1"), 'JBSWY3DPEHPK3PXP\n" TOTP_AUTH\n');
  assert.equal(statSync(path).mode & 0o7777, 0o400);
  assert.notEqual(statSync(path).ino, inode, "a new inode: the old file was replaced, not rewritten");
  assert.deepEqual(readdirSync(dir), [".google_authenticator"]);
});

test("a killed lock holder's temp file is removed by the next commit by name; neither commit nor enroll lists the directory", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "ga");
  writeFileSync(path, GOOD, { mode: 0o600 });
  writeFileSync(`${path}~otpgate-locked`, "partial, a holder killed mid-way");
  writeFileSync(`${path}~otpgate-0123456789ab`, "partial, an old one-shot writer");
  writeFileSync(`${path}~`, "reference 1.08 temp");
  writeFileSync(`${path}~AbC123`, "reference HEAD temp");
  const s = await store(path).acquire();
  assert.deepEqual(await s!.commit(GOOD), { ok: true });
  await s!.release();
  // Only the fixed name is removed: finding others would mean listing a directory whose size the user chooses.
  assert.deepEqual(readdirSync(dir).sort(), ["ga", "ga~", "ga~AbC123", "ga~otpgate-0123456789ab"]);
  writeNewStateFile(join(dir, "ga"), GOOD, { replace: true });
  // rt1 F3: enroll runs in the resident server too, so it no longer sweeps either (it has its own fixed name).
  assert.deepEqual(readdirSync(dir).sort(), ["ga", "ga~", "ga~AbC123", "ga~otpgate-0123456789ab"], "enroll lists nothing, so finds nothing to sweep");
});

test("the lock times out with a clear message while another holder keeps it", async () => {
  const name = lockName("secret", ["test", String(process.pid), "timeout"]);
  const held = await acquireLock(name);
  await assert.rejects(acquireLock(name, { timeoutMs: 150 }), /held its lock for too long/);
  await held.release();
  const again = await acquireLock(name, { timeoutMs: 150 });
  await again.release();
});

test("the lock is released by the kernel when its holder is killed with SIGKILL (nothing left behind)", async () => {
  const name = lockName("secret", ["test", String(process.pid), "kill"]);
  const lockModule = join(ROOT, "build/src/platform/lock.js");
  const child = spawn(process.execPath, [
    "--input-type=module",
    "-e",
    `const { acquireLock } = await import(${JSON.stringify(lockModule)}); await acquireLock(${JSON.stringify(name)}); console.log("held"); setInterval(() => {}, 1000);`,
  ]);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("held") && resolve());
    child.on("exit", () => reject(new Error("child exited early")));
  });
  await assert.rejects(acquireLock(name, { timeoutMs: 100 }), /held its lock/);
  child.kill("SIGKILL");
  await new Promise((r) => child.on("exit", r));
  const started = Date.now();
  const mine = await acquireLock(name, { timeoutMs: 2000 });
  assert.ok(Date.now() - started < 1000, "no stale-lock wait after a crash");
  await mine.release();
});

test("the portable node:net lock path behaves the same (exclusive, released on release)", async () => {
  const name = lockName("secret", ["test", String(process.pid), "net"]);
  const held = await acquireLock(name, { viaNet: true });
  await assert.rejects(acquireLock(name, { timeoutMs: 100, viaNet: true }), /held its lock/);
  await assert.rejects(acquireLock(name, { timeoutMs: 100 }), /held its lock/, "both paths use the same kernel name");
  await held.release();
  const again = await acquireLock(name, { timeoutMs: 200 });
  await again.release();
});

test("lock names depend on the secret: without the secret the name cannot be computed", () => {
  const a = lockName("SECRET-A", ["1", "2", "ga"]);
  assert.notEqual(a, lockName("SECRET-B", ["1", "2", "ga"]));
  assert.notEqual(a, lockName("SECRET-A", ["1", "3", "ga"]));
  assert.match(a, /^\0otpgate-[0-9a-f]{40}$/);
});

const NOBODY = { uid: 65534, gid: 65534, groups: [65534] };
const asRoot = uid === 0;

/** A directory tree the user nobody owns: DIR/home (nobody, 0700) with a state file in it. */
function nobodyHome(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  chmodSync(dir, 0o711);
  const home = join(dir, "home");
  mkdirSync(join(home, ".otp"), { recursive: true, mode: 0o700 });
  const path = join(home, ".otp", "ga");
  writeFileSync(path, GOOD, { mode: 0o600 });
  for (const p of [home, join(home, ".otp"), path]) chownSync(p, NOBODY.uid, NOBODY.gid);
  const rootOnly = join(dir, "root-only");
  mkdirSync(rootOnly, { mode: 0o700 });
  return { dir, home, path, rootOnly };
}

test("actAs: root reads and replaces the file as the owner and is root again after every step", { skip: !asRoot && "needs root" }, async (t) => {
  const { path } = nobodyHome(t);
  const s = new FileAccountStore({ path, owner: { uid: NOBODY.uid, name: "nobody" }, strictOwner: true, allowedPerm: 0o600, actAs: NOBODY });
  const held = await s.acquire();
  assert.equal(process.geteuid!(), 0, "root again while the lock is held (across awaits)");
  assert.deepEqual(await held!.commit(GOOD.replace("12345678\n", "")), { ok: true });
  await held!.release();
  assert.equal(process.geteuid!(), 0);
  assert.equal(process.getegid!(), 0);
  assert.equal(statSync(path).uid, NOBODY.uid, "the new file is the owner's");
  assert.equal(readFileSync(path, "latin1"), 'JBSWY3DPEHPK3PXP\n" TOTP_AUTH\n');
});

test("actAs: ~/.otp swapped for a symlink to a root-only directory: root neither reads nor writes there", { skip: !asRoot && "needs root" }, async (t) => {
  const { home, path, rootOnly } = nobodyHome(t);
  // What root would find there: a file that looks like the user's (the user cannot put it there).
  writeFileSync(join(rootOnly, "ga"), GOOD, { mode: 0o600 });
  chownSync(join(rootOnly, "ga"), NOBODY.uid, NOBODY.gid);
  const events: string[] = [];
  const watcher = watch(rootOnly, (_e, name) => events.push(String(name)));
  t.after(() => watcher.close());
  const s = new FileAccountStore({ path, owner: { uid: NOBODY.uid, name: "nobody" }, strictOwner: true, allowedPerm: 0o600, actAs: NOBODY });
  // Between two logins (or between read and commit) the user swaps the directory.
  const first = await s.acquire();
  renameSync(join(home, ".otp"), join(home, ".otp.real"));
  symlinkSync(rootOnly, join(home, ".otp"));
  const result = await first!.commit(GOOD.replace("12345678\n", "")).catch((err: unknown) => err);
  assert.notDeepEqual(result, { ok: true });
  await first!.release();
  await assert.rejects(s.acquire(), (err: unknown) => err instanceof StateFileError && /permission denied/.test(err.message));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(events, [], "nothing was created or renamed in the root-only directory, not even for a moment");
  assert.deepEqual(readdirSync(rootOnly), ["ga"]);
  assert.equal(readFileSync(join(rootOnly, "ga"), "latin1"), GOOD);
  assert.equal(process.geteuid!(), 0);
});

test("actAs by a process that is neither root nor the owner: refused, naming what to do", { skip: !asRoot && "needs root" }, () => {
  const storeModule = join(ROOT, "build/src/stores/file-store.js");
  const r = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const { FileAccountStore } = await import(${JSON.stringify(storeModule)}); try { new FileAccountStore({ path: "/tmp/x", owner: { uid: 4242, name: "someone" }, strictOwner: true, allowedPerm: 0o600, actAs: { uid: 4242, gid: 4242 } }).peek(); } catch (e) { console.log(e.message); }`,
    ],
    { uid: NOBODY.uid, gid: NOBODY.gid, encoding: "utf8" },
  );
  assert.match(r.stdout, /otpgate runs as uid 65534 and cannot act as someone \(uid 4242\) to use \/tmp\/x: run it as root or as someone/);
});

for (const how of ["given actAs", "no actAs (ids looked up from the owner)"]) {
  test(`root, ${how}: ~/.otp swapped for a symlink to a root-only directory between read and commit: nothing read or written there`, { skip: !asRoot && "needs root" }, async (t) => {
    const { home, path, rootOnly } = nobodyHome(t);
    writeFileSync(join(rootOnly, "ga"), GOOD, { mode: 0o600 });
    chownSync(join(rootOnly, "ga"), NOBODY.uid, NOBODY.gid);
    const before = statSync(rootOnly);
    const s = new FileAccountStore({ path, owner: { uid: NOBODY.uid, name: "nobody" }, strictOwner: true, allowedPerm: 0o600, ...(how === "given actAs" ? { actAs: NOBODY } : {}) });
    const first = await s.acquire();
    assert.equal(first!.text, GOOD, "the user's own directory works (it was refused before for a root process without actAs)");
    renameSync(join(home, ".otp"), join(home, ".otp.real"));
    symlinkSync(rootOnly, join(home, ".otp"));
    const result = await first!.commit(GOOD.replace("12345678\n", "")).catch((err: unknown) => err);
    await first!.release();
    assert.deepEqual(result, { ok: false, conflict: true }, "as the user, the swapped path is not the file that was read: nothing is written");
    await assert.rejects(s.acquire(), (err: unknown) => err instanceof StateFileError && /permission denied/.test(err.message));
    const after = statSync(rootOnly);
    assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], "the root-only directory did not change");
    assert.deepEqual(readdirSync(rootOnly), ["ga"]);
    assert.equal(readFileSync(join(rootOnly, "ga"), "latin1"), GOOD);
    assert.equal(process.geteuid!(), 0);
  });
}

test("root without actAs: gid and groups come from the owner's account; an owner uid with no account is refused before anything is touched", { skip: !asRoot && "needs root" }, async (t) => {
  const { path } = nobodyHome(t);
  const held = await new FileAccountStore({ path, owner: { uid: NOBODY.uid, name: "nobody" }, strictOwner: true, allowedPerm: 0o600 }).acquire();
  assert.deepEqual(await held!.commit(GOOD), { ok: true });
  await held!.release();
  assert.deepEqual([statSync(path).uid, statSync(path).gid], [NOBODY.uid, NOBODY.gid], "written as nobody:nogroup");
  assert.equal(process.getegid!(), 0);
  const dir = tempDir(t);
  const orphan = join(dir, "ga");
  writeFileSync(orphan, GOOD, { mode: 0o600 });
  chownSync(orphan, 4242, 4242);
  await refuses(
    orphan,
    /no account has uid 4242 \(ghost\), so otpgate cannot act as the owner of .*getent passwd ghost/,
    new FileAccountStore({ path: orphan, owner: { uid: 4242, name: "ghost" }, strictOwner: true, allowedPerm: 0o600 }),
  );
});

test("root: a home that does not exist is simply not enrolled", { skip: !asRoot && "needs root" }, () => {
  const owner = { uid: NOBODY.uid, name: "nobody" };
  assert.equal(new FileAccountStore({ path: "/nonexistent/.google_authenticator", owner, strictOwner: true, allowedPerm: 0o600 }).peek(), null);
});
