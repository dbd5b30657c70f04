// The login decision (services/login.ts) with a fixed clock: grace, nullok, allow_readonly, the
// password split (the account's digit count from the end, 8-digit scratch codes), the password
// checked before the code is used (a wrong password leaves the state byte-identical, also on disk),
// the file-accounts store factory (stores/file-accounts.ts) and "unavailable" lookups. Codes come
// from node:crypto directly (an oracle independent of the generator under test).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StateFileError } from "../../src/core/errors.js";
import { nodeMacFactory } from "../../src/platform/mac.js";
import type { AccountStore, LockedAccount } from "../../src/ports/index.js";
import { decideLogin, exitCodeOf, logOf, splitAt, type LoginDeps, type LoginFactors, type LoginRequest } from "../../src/services/login.js";
import { accountStore, fileAccounts, fileAccountsCached, statePathOf } from "../../src/stores/file-accounts.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const NOW_MS = 1_700_000_010_000;
const NOW = NOW_MS / 1000;
const STEP = Math.floor(NOW / 30);
const CODE_ONLY: LoginFactors = { password: false, requirePublickey: false, nullok: false, noSkewAdjust: true, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false };

function base32Decode(s: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 with node:crypto only. */
function oracle(step: number, digits = 6): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(SECRET)).update(counter).digest();
  const o = mac[mac.length - 1]! & 0xf;
  const n = (mac.readUInt32BE(o) & 0x7fffffff) % 10 ** digits;
  return String(n).padStart(digits, "0");
}

function rig(store: AccountStore, password = "pw", now = () => NOW_MS) {
  const calls = { password: [] as string[], slept: 0 };
  const deps: LoginDeps = {
    openAccount: (user) => (user === "alice" ? { store, location: "memory" } : null),
    checkPassword: async (_user, given) => {
      calls.password.push(given);
      return given === password;
    },
    clock: { nowMs: now },
    macFactory: nodeMacFactory,
    sleep: async (ms) => {
      calls.slept += ms;
    },
  };
  return { deps, calls };
}

const req = (token: string, factors: Partial<LoginFactors> = {}, extra: Partial<LoginRequest> = {}): LoginRequest => ({
  user: "alice",
  token,
  service: "test",
  factors: { ...CODE_ONLY, ...factors },
  ...extra,
});

test("the oracle agrees with the RFC 6238 test vector (so the codes below are independent and right)", () => {
  // RFC 6238 appendix B, SHA1, T = 59 s: 94287082 (8 digits) with key "12345678901234567890".
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(1n);
  const mac = createHmac("sha1", Buffer.from("12345678901234567890")).update(counter).digest();
  const o = mac[mac.length - 1]! & 0xf;
  assert.equal(String((mac.readUInt32BE(o) & 0x7fffffff) % 1e8).padStart(8, "0"), "94287082");
});

test("grace: a second login from the same host within the period needs no code; another host, a later time or password mode do", async () => {
  const text = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  const store = new MemoryAccountStore(text);
  let now = NOW_MS;
  const { deps } = rig(store, "pw", () => now);
  const grace = { gracePeriodSeconds: 600 };
  const first = await decideLogin(deps, req(oracle(STEP), grace, { rhost: "10.0.0.1" }));
  assert.equal(first.outcome === "accepted" && first.via, "totp");
  assert.match(store.current!, new RegExp(`^" LAST0 10\\.0\\.0\\.1 ${NOW}$`, "m"), "the login is recorded for its host");
  now += 60_000;
  const again = await decideLogin(deps, req("", grace, { rhost: "10.0.0.1" }));
  assert.equal(again.outcome === "accepted" && again.via, "grace");
  const other = await decideLogin(deps, req("", grace, { rhost: "10.0.0.2" }));
  assert.equal(other.outcome === "rejected" && other.reason, "malformed", "another host needs a code");
  const noHost = await decideLogin(deps, req("", grace));
  assert.equal(noHost.outcome, "rejected", "no PAM_RHOST, no grace");
  const pw = await decideLogin(deps, req("pw", { ...grace, password: true }, { rhost: "10.0.0.1" }));
  assert.equal(pw.outcome, "rejected", "password mode never applies grace");
  now = NOW_MS + 601_000;
  const late = await decideLogin(deps, req("", grace, { rhost: "10.0.0.1" }));
  assert.equal(late.outcome, "rejected", "after the period a code is needed again");
});

test("nullok: an unenrolled account is let through only without a file; an enrolled one still needs its code", async () => {
  const none = rig(new MemoryAccountStore(null));
  assert.deepEqual(await decideLogin(none.deps, req("")), { outcome: "rejected", reason: "not-enrolled", detail: {} });
  const through = await decideLogin(none.deps, req("", { nullok: true }));
  assert.equal(through.outcome === "accepted" && through.via, "nullok");
  assert.equal(exitCodeOf(through), 0);
  const enrolled = rig(new MemoryAccountStore(`${SECRET}\n" TOTP_AUTH\n`));
  assert.equal((await decideLogin(enrolled.deps, req("", { nullok: true }))).outcome, "rejected");
});

/** A store whose commit always fails as a read-only file system would. */
class ReadOnlyStore implements AccountStore {
  constructor(readonly text: string) {}
  async acquire(): Promise<LockedAccount | null> {
    return {
      text: this.text,
      version: "1",
      location: "ro",
      commit: async () => {
        throw new StateFileError("could not update ro (EROFS)");
      },
      release: async () => {},
    };
  }
}

test("allow_readonly: a right code whose state cannot be saved is an error unless allowed; then accepted with a warning", async () => {
  const text = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  const { deps } = rig(new ReadOnlyStore(text));
  const refused = await decideLogin(deps, req(oracle(STEP)));
  assert.deepEqual(refused, { outcome: "error", reason: "state-file", detail: { problem: "could not update ro (EROFS)" } });
  assert.equal(exitCodeOf(refused), 2);
  const allowed = await decideLogin(deps, req(oracle(STEP), { allowReadonly: true }));
  assert.equal(allowed.outcome === "accepted" && allowed.warning, "allow-readonly-unsaved");
  assert.deepEqual(logOf(allowed, false), { level: "warning", fields: { result: "accepted", via: "totp", warning: "allow-readonly-unsaved", problem: "could not update ro (EROFS)" } });
  const wrong = await decideLogin(deps, req(String((Number(oracle(STEP)) + 1) % 1e6).padStart(6, "0"), { allowReadonly: true, noSkewAdjust: true }));
  assert.equal(wrong.outcome, "rejected", "allow_readonly never accepts a wrong code");
});

test("password split: the account's digit count from the end (OTPGATE_DIGITS 8), an unused 8-digit scratch code, else 6", async () => {
  const eight = `${SECRET}\n" OTPGATE_DIGITS 8\n" DISALLOW_REUSE\n" OTPGATE_TOTP_AUTH\n`;
  assert.equal(splitAt(eight, "pw" + oracle(STEP, 8)), 8);
  const store = new MemoryAccountStore(eight);
  const { deps, calls } = rig(store, "pw123");
  // The password ends in digits: only the digit count says where the code starts.
  const d = await decideLogin(deps, req("pw123" + oracle(STEP, 8), { password: true }));
  assert.equal(d.outcome === "accepted" && d.via, "totp+password", JSON.stringify(d));
  assert.deepEqual(calls.password, ["pw123"], "checked once, with the exact password");
  const six = `${SECRET}\n" TOTP_AUTH\n87654321\n`;
  assert.equal(splitAt(six, "pw1" + oracle(STEP)), 6);
  assert.equal(splitAt(six, "pw87654321"), 8, "an unused scratch code at the end");
  assert.equal(splitAt(six, "pw07654321"), 6, "a scratch code never starts with 0");
  assert.equal(splitAt(`${SECRET}\n" TOTP_AUTH\n`, "pw87654321"), 6, "not a scratch code of this account");
  const scratch = rig(new MemoryAccountStore(six), "pw");
  const used = await decideLogin(scratch.deps, req("pw87654321", { password: true }));
  assert.equal(used.outcome === "accepted" && used.via, "scratch+password");
  assert.deepEqual(scratch.calls.password, ["pw"]);
});

test("password before code: a wrong password with every kind of right code leaves the state byte-identical, and nothing is held across it", async () => {
  const text = `${SECRET}\n" RATE_LIMIT 3 30 ${NOW - 5}\n" DISALLOW_REUSE ${STEP - 2}\n" TOTP_AUTH\n" LAST0 10.0.0.1 ${NOW - 10}\n12345678\n`;
  for (const token of ["bad" + oracle(STEP), "bad12345678", "bad" + oracle(STEP + 5), "", "bad", oracle(STEP)]) {
    const store = new MemoryAccountStore(text);
    const { deps } = rig(store, "good");
    const d = await decideLogin(deps, req(token, { password: true, gracePeriodSeconds: 600 }, { rhost: "10.0.0.1" }));
    assert.equal(d.outcome, "rejected", JSON.stringify(token));
    assert.equal(store.current, text, `${JSON.stringify(token)}: byte-identical`);
  }
});

test("a wrong password through a real file store: the file on disk is byte-identical (bytes and mtime), the same code then works", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-login-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "ga");
  const text = `${SECRET}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const store = accountStore({ name: "me", uid, gid, groups: [gid] }, path);
  const { deps } = rig(store, "good");
  const code = oracle(STEP);
  const before = readFileSync(path);
  const { statSync } = await import("node:fs");
  const mtime = statSync(path).mtimeMs;
  assert.equal((await decideLogin(deps, req("bad" + code, { password: true }))).outcome, "rejected");
  assert.deepEqual(readFileSync(path), before);
  assert.equal(statSync(path).mtimeMs, mtime, "not even rewritten with the same bytes");
  const ok = await decideLogin(deps, req("good" + code, { password: true }));
  assert.equal(ok.outcome === "accepted" && ok.via, "totp+password", JSON.stringify(ok));
  assert.match(readFileSync(path, "latin1"), new RegExp(`DISALLOW_REUSE ${STEP}$`, "m"));
});

test("file-accounts: paths from the pattern, user= without a home, unknown users, and a lookup that cannot answer", async () => {
  assert.equal(statePathOf({ name: "alice", home: "/home/alice" }, {}), "/home/alice/.google_authenticator");
  assert.equal(statePathOf({ name: "alice", home: "/home/alice" }, { secret: "/var/otp/${USER}" }), "/var/otp/alice");
  assert.throws(() => statePathOf({ name: "alice", home: "/home/alice" }, { fileOwner: "root" }), /no home directory is known for "alice"/, "user= has no home to expand ~ with");
  assert.equal(fileAccounts().open("no-such-user-otpgate-h1"), null);
  const root = fileAccounts({ secret: "/var/otp/${USER}" }).open("root");
  assert.equal(root?.location, "/var/otp/root");
  const accounts = (answer: Awaited<ReturnType<Parameters<typeof fileAccountsCached>[1]>>) => fileAccountsCached({ secret: "/srv/otp/${USER}" }, async () => answer);
  assert.equal(await accounts(null).open("bob"), null);
  assert.equal(await accounts("busy").open("bob"), "unavailable");
  const found = await accounts({ name: "bob", uid: 4242, gid: 4242, home: "/home/bob", groups: [4242, 7] }).open("bob");
  assert.ok(found && found !== "unavailable");
  assert.equal(found.location, "/srv/otp/bob");
  assert.equal(found.store.path, "/srv/otp/bob");
  // "unavailable" is an error that says try again, never "no such user".
  const busy = fileAccountsCached({}, async () => "busy" as const);
  const d = await decideLogin({ ...rig(new MemoryAccountStore(null)).deps, openAccount: (name) => busy.open(name) }, req(oracle(STEP)));
  assert.deepEqual(d, { outcome: "error", reason: "unavailable", detail: { problem: "the user database did not answer; try again" } });
  assert.equal(exitCodeOf(d), 2);
});

test(
  "file-accounts stores act as the file's owner: root opening nobody's file under a directory only root may enter is refused",
  { skip: process.getuid?.() !== 0 ? "needs root" : false },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "otpgate-actas-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o700); // root's, and nobody may not enter it
    const path = join(dir, "nobody");
    writeFileSync(path, `${SECRET}\n" TOTP_AUTH\n`, { mode: 0o600 });
    const { chownSync } = await import("node:fs");
    chownSync(path, 65534, 65534);
    const account = fileAccounts({ secret: `${dir}/\${USER}` }).open("nobody");
    assert.ok(account);
    assert.equal(account.location, path);
    // As root the file would be readable; as nobody (what the store switches to) it is not.
    assert.throws(
      () => account.store.peek(),
      (err: Error) => err instanceof StateFileError && /permission denied/.test(err.message),
    );
    chmodSync(dir, 0o711);
    assert.match(account.store.peek() ?? "", /TOTP_AUTH/, "once nobody may pass the directory, the file reads");
    assert.equal(process.geteuid?.(), 0, "and the process is root again after each section");
  },
);
