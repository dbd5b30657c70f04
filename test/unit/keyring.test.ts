// The gateway's keyring: purpose binding, tampering, key ids and rotation, the legacy 64-byte file,
// and every refusal (missing, corrupt, loose mode) with its message and the file unchanged.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, symlinkSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Keyring, loadOrCreateKeyring, parseKeyFile, readKeyFile, rotateKeys, serializeKeyFile, type Purpose } from "../../src/platform/keyring.js";
import { systemRandom } from "../../src/platform/random.js";

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const HOUR = 3_600_000;
const ABS = 12 * HOUR;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-keyring-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const PURPOSES: Purpose[] = ["session", "csrf", "enroll-draft", "secret-fingerprint"];

test("a new keys file: mode 0600, one key (id 1), the same keyring on the next start", (t) => {
  const path = join(tempDir(t), "gateway.keys");
  const a = loadOrCreateKeyring(path, T0, systemRandom);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(a.kids, [1]);
  const b = loadOrCreateKeyring(path, T0 + 1, systemRandom);
  const token = a.seal("session", { sid: "x" });
  assert.match(token, /^v1\.1\.[A-Za-z0-9_-]+$/);
  assert.deepEqual(b.open("session", token), { sid: "x" });
});

test("purpose binding: a value sealed for one purpose never opens for another, nor does a MAC verify", (t) => {
  const ring = loadOrCreateKeyring(join(tempDir(t), "k"), T0, systemRandom);
  for (const sealedFor of PURPOSES) {
    const token = ring.seal(sealedFor, { user: "alice" });
    for (const openAs of PURPOSES) assert.deepEqual(ring.open(openAs, token), openAs === sealedFor ? { user: "alice" } : null, `${sealedFor} opened as ${openAs}`);
    const mac = ring.mac(sealedFor, "id-1")!;
    for (const checkAs of PURPOSES) assert.equal(ring.macValid(checkAs, "id-1", mac), checkAs === sealedFor, `${sealedFor} MAC checked as ${checkAs}`);
  }
  // A CSRF token (a MAC) given as a session cookie, and the other way round.
  assert.equal(ring.open("session", ring.mac("csrf", "id-1")!), null);
  assert.equal(ring.macValid("csrf", "id-1", ring.seal("csrf", "id-1")), false);
});

test("tampering, truncation, a foreign kid, a foreign key, or junk: null", (t) => {
  const dir = tempDir(t);
  const ring = loadOrCreateKeyring(join(dir, "k"), T0, systemRandom);
  const other = loadOrCreateKeyring(join(dir, "k2"), T0, systemRandom);
  const token = ring.seal("session", { user: "alice" });
  assert.doesNotMatch(Buffer.from(token.split(".")[2]!, "base64url").toString("latin1"), /alice/, "encrypted, not only signed");
  const body = Buffer.from(token.split(".")[2]!, "base64url");
  for (let i = 0; i < body.length; i += 7) {
    const flipped = Buffer.from(body);
    flipped[i]! ^= 1;
    assert.equal(ring.open("session", `v1.1.${flipped.toString("base64url")}`), null, `bit flipped at byte ${i}`);
  }
  assert.equal(ring.open("session", token.slice(0, 30)), null);
  assert.equal(ring.open("session", token.replace(/^v1\.1\./, "v1.2.")), null, "unknown kid");
  assert.equal(ring.open("session", token.replace(/^v1\./, "v2.")), null, "unknown version");
  assert.equal(other.open("session", token), null, "another keyring");
  assert.equal(ring.open("session", "not a token!"), null);
  assert.equal(ring.open("session", `v1.1.${"A".repeat(5000)}`), null, "oversized");
  assert.equal(ring.macValid("csrf", "id", undefined), false);
  assert.equal(ring.macValid("csrf", "id2", ring.mac("csrf", "id")!), false);
});

test("rotation: the newest key seals, older ones still open; the legacy 64-byte file is key 0 and is converted", async (t) => {
  const path = join(tempDir(t), "gateway.keys");
  writeFileSync(path, Buffer.alloc(64, 7), { mode: 0o600 });
  const legacy = loadOrCreateKeyring(path, T0, systemRandom);
  assert.equal(legacy.file.legacy, true);
  assert.deepEqual(legacy.kids, [0]);
  const before = legacy.seal("session", { n: 0 });
  assert.match(before, /^v1\.0\./);

  const r = await rotateKeys(path, T0 + HOUR, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: ABS });
  assert.equal(r.added?.kid, 1);
  assert.match(readFileSync(path, "latin1"), /^# otpgate gateway keys/, "converted to the text form");
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const after = loadOrCreateKeyring(path, T0 + HOUR, systemRandom);
  assert.deepEqual(after.kids, [0, 1]);
  assert.equal(after.file.lockSecret.equals(legacy.file.lockSecret), true, "the lock secret survives the conversion");
  assert.deepEqual(after.open("session", before), { n: 0 }, "a cookie from before the rotation still opens");
  assert.match(after.seal("session", { n: 1 }), /^v1\.1\./, "new ones are sealed with the new key");

  await rotateKeys(path, T0 + 2 * HOUR, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: ABS });
  assert.deepEqual(loadOrCreateKeyring(path, T0, systemRandom).kids, [0, 1, 2]);
});

test("retiring old keys waits for the absolute session lifetime, unless forced; sessions of dropped keys end", async (t) => {
  const path = join(tempDir(t), "gateway.keys");
  const first = loadOrCreateKeyring(path, T0, systemRandom);
  const old = first.seal("session", { n: 1 });
  await rotateKeys(path, T0 + HOUR, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: ABS });
  const text = readFileSync(path);
  await assert.rejects(
    rotateKeys(path, T0 + 2 * HOUR, systemRandom, { rotate: false, retireOld: true, force: false, absoluteMs: ABS }),
    /younger than the absolute session lifetime.*--force.*nothing was changed/,
  );
  assert.deepEqual(readFileSync(path), text, "unchanged");
  const late = await rotateKeys(path, T0 + HOUR + ABS + 60_000, systemRandom, { rotate: false, retireOld: true, force: false, absoluteMs: ABS });
  assert.deepEqual(late.retired, [1]);
  const ring = loadOrCreateKeyring(path, T0, systemRandom);
  assert.deepEqual(ring.kids, [2]);
  assert.equal(ring.open("session", old), null, "sealed with a retired key: ended");

  await rotateKeys(path, T0 + 20 * HOUR, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: ABS });
  const forced = await rotateKeys(path, T0 + 20 * HOUR, systemRandom, { rotate: false, retireOld: true, force: true, absoluteMs: ABS });
  assert.deepEqual(forced.retired, [2]);
  assert.deepEqual(loadOrCreateKeyring(path, T0, systemRandom).kids, [3]);
});

test("refusals: missing file to rotate, loose mode, symlink, corrupt content; nothing is changed", async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, "none");
  await assert.rejects(
    rotateKeys(missing, T0, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: ABS }),
    /does not exist: the gateway creates it when it first starts; nothing to rotate/,
  );
  assert.equal(existsSync(missing), false);

  const loose = join(dir, "loose");
  writeFileSync(loose, Buffer.alloc(64, 1));
  chmodSync(loose, 0o644);
  assert.throws(() => loadOrCreateKeyring(loose, T0, systemRandom), /has mode 0644; it must be readable by its owner only: chmod 600/);
  await assert.rejects(rotateKeys(loose, T0, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: ABS }), /chmod 600/);
  assert.deepEqual(readFileSync(loose), Buffer.alloc(64, 1));
  assert.equal(statSync(loose).mode & 0o777, 0o644);

  const link = join(dir, "link");
  symlinkSync(loose, link);
  assert.throws(() => loadOrCreateKeyring(link, T0, systemRandom), /is a symbolic link/);

  for (const [name, content, why] of [
    ["short", "x".repeat(10), "no header line"],
    ["nolock", "otpgate-gateway-keys 1\nkey 1 5 " + Buffer.alloc(32).toString("base64url") + "\n", "no lock secret"],
    ["nokey", "otpgate-gateway-keys 1\nlock " + Buffer.alloc(32).toString("base64url") + "\n", "no key"],
    ["badkey", "otpgate-gateway-keys 1\nlock " + Buffer.alloc(32).toString("base64url") + "\nkey 1 5 AAAA\n", "key 1 is malformed"],
    [
      "order",
      "otpgate-gateway-keys 1\nlock " + Buffer.alloc(32).toString("base64url") + "\nkey 2 5 " + Buffer.alloc(32).toString("base64url") + "\nkey 1 5 " + Buffer.alloc(32).toString("base64url") + "\n",
      "key ids are not increasing",
    ],
  ] as const) {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    assert.throws(() => loadOrCreateKeyring(path, T0, systemRandom), new RegExp(`not a keys file otpgate wrote \\(${why}.*restore it from a backup`), name);
    await assert.rejects(rotateKeys(path, T0, systemRandom, { rotate: true, retireOld: false, force: false, absoluteMs: ABS }), /not a keys file/);
    assert.equal(readFileSync(path, "latin1"), content, `${name} unchanged`);
  }
});

test("the text form round-trips", () => {
  const file = {
    lockSecret: Buffer.alloc(32, 3),
    keys: [
      { kid: 0, createdAt: 5, material: Buffer.alloc(64, 1) },
      { kid: 4, createdAt: 9, material: Buffer.alloc(32, 2) },
    ],
    legacy: false,
    sessionsFileCreated: false,
  };
  assert.deepEqual(parseKeyFile(Buffer.from(serializeKeyFile(file), "latin1"), 0, "p"), file);
  // The record that the sessions file was created (red team 2, F3) round-trips too.
  const recorded = { ...file, sessionsFileCreated: true };
  assert.match(serializeKeyFile(recorded), /^sessions created$/m);
  assert.deepEqual(parseKeyFile(Buffer.from(serializeKeyFile(recorded), "latin1"), 0, "p"), recorded);
  const ring = new Keyring(file, systemRandom);
  assert.equal(ring.newest.kid, 4);
  assert.equal(readKeyFile("/nonexistent/otpgate/keys"), null);
});
