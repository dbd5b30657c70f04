// The login decision (services/login.ts) with a memory store, a fixed clock and a scripted
// password check: what is checked, in which order, and what is committed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { nodeMacFactory } from "../../src/platform/mac.js";
import { decideLogin, logOf, splitAt, type LoginDeps, type LoginFactors, type LoginRequest } from "../../src/services/login.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";
import { codeAt } from "../helpers/otp.js";

const SECRET = "2SH3V3GDW7ZNMGYE";
const NOW_MS = 300_000_000;
const STEP = NOW_MS / 30_000;
const KEY_INFO = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
const CODE_ONLY: LoginFactors = { password: false, requirePublickey: false, nullok: false, noSkewAdjust: true, noIncrementHotp: false, gracePeriodSeconds: 0, allowReadonly: false };

function rig(text: string | null, password = "pw") {
  const store = new MemoryAccountStore(text);
  const calls = { open: 0, password: [] as string[], slept: 0 };
  const deps: LoginDeps = {
    openAccount: (user) => {
      calls.open++;
      return user === "alice" ? { store, location: "memory", enter: () => () => {} } : null;
    },
    checkPassword: async (_user, given) => {
      calls.password.push(given);
      return given === password;
    },
    clock: { nowMs: () => NOW_MS },
    macFactory: nodeMacFactory,
    sleep: async (ms) => {
      calls.slept += ms;
    },
  };
  return { store, calls, deps };
}

const req = (token: string, factors: Partial<LoginFactors> = {}, extra: Partial<LoginRequest> = {}): LoginRequest => ({
  user: "alice",
  token,
  service: "sshd",
  factors: { ...CODE_ONLY, ...factors },
  ...extra,
});

test("require_publickey: refused before the account is even opened, unless sshd reports a key", async () => {
  const text = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  for (const info of [undefined, "", "password\n", "keyboard-interactive\n"]) {
    const { deps, calls, store } = rig(text);
    const d = await decideLogin(deps, req(codeAt(SECRET, STEP), { requirePublickey: true }, { sshAuthInfo: info }));
    assert.deepEqual(d, { outcome: "rejected", reason: "publickey-required", detail: {} });
    assert.equal(calls.open, 0);
    assert.equal(store.current, text);
  }
  const { deps } = rig(text);
  assert.equal((await decideLogin(deps, req(codeAt(SECRET, STEP), { requirePublickey: true }, { sshAuthInfo: KEY_INFO }))).outcome, "accepted");
});

test("password + code: a wrong password commits nothing, not even a RATE_LIMIT attempt; then the same code works", async () => {
  const text = `${SECRET}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  const { deps, calls, store } = rig(text, "s3cret");
  const code = codeAt(SECRET, STEP);
  const wrong = await decideLogin(deps, req("nope" + code, { password: true }, { rejectNotBeforeMs: NOW_MS + 1000 }));
  assert.deepEqual(wrong, { outcome: "rejected", reason: "password", detail: {} });
  assert.deepEqual(calls.password, ["nope"], "the password is checked once, split by the digit count");
  assert.equal(store.current, text, "a wrong password proves nothing about the code: the state is untouched");
  assert.equal(calls.slept, 1000, "the refusal waited for the floor");
  const right = await decideLogin(deps, req("s3cret" + code, { password: true }, { rejectNotBeforeMs: NOW_MS + 1000 }));
  assert.equal(right.outcome === "accepted" && right.via, "totp+password");
  assert.match(store.current!, new RegExp(`DISALLOW_REUSE ${STEP}$`, "m"));
  assert.equal(calls.slept, 1000, "an acceptance is not held back");
  const replay = await decideLogin(deps, req("s3cret" + code, { password: true }));
  assert.deepEqual(replay, { outcome: "rejected", reason: "replay", detail: {} });
});

test("sshd as the caller (SSH_CONNECTION / PAM_TTY=ssh): code-only needs the key whatever the options; password+code does not", async () => {
  const text = `${SECRET}\n" DISALLOW_REUSE\n" TOTP_AUTH\n`;
  for (const factors of [{}, { nullok: true }]) {
    for (const info of [undefined, "", "password\n", "keyboard-interactive\n"]) {
      const { deps, calls, store } = rig(text);
      const d = await decideLogin(deps, req(codeAt(SECRET, STEP), factors, { sshAuthInfo: info, sshCaller: true }));
      assert.deepEqual(d, { outcome: "rejected", reason: "publickey-required", detail: { caller: "ssh" } });
      assert.equal(calls.open, 0, "refused before the account is opened");
      assert.equal(store.current, text);
    }
  }
  const withKey = rig(text);
  assert.equal((await decideLogin(withKey.deps, req(codeAt(SECRET, STEP), {}, { sshAuthInfo: KEY_INFO, sshCaller: true }))).outcome, "accepted");
  const notSsh = rig(text);
  assert.equal((await decideLogin(notSsh.deps, req(codeAt(SECRET, STEP), {}, { sshCaller: false }))).outcome, "accepted", "RStudio / su: no key needed");
  const pw = rig(text, "s3cret");
  const d = await decideLogin(pw.deps, req("s3cret" + codeAt(SECRET, STEP), { password: true }, { sshCaller: true }));
  assert.equal(d.outcome === "accepted" && d.via, "totp+password", "with password the code is not alone");
  const log = logOf({ outcome: "rejected", reason: "publickey-required", detail: { caller: "ssh" } }, false);
  assert.deepEqual(log.fields, { result: "rejected", reason: "publickey-required", caller: "ssh" });
});

test("refusals that prove nothing about the code leave the shared state alone (RATE_LIMIT)", async () => {
  const text = `${SECRET}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n`;
  const code = codeAt(SECRET, STEP);
  for (const [token, factors, reason] of [
    ["", {}, "malformed"],
    ["abc", {}, "malformed"],
    ["12345", {}, "malformed"],
    ["1234567", {}, "malformed"],
    ["x" + code, {}, "malformed"],
    [code + " ", {}, "malformed"],
    ["wrong" + code, { password: true }, "password"],
    ["wrong12345678", { password: true }, "password"],
    ["s3cretabcdef", { password: true }, "malformed"],
    [code, { password: true }, "password"],
  ] as const) {
    const { deps, store } = rig(text, "s3cret");
    for (let i = 0; i < 5; i++) {
      const d = await decideLogin(deps, req(token, factors));
      assert.deepEqual(d, { outcome: "rejected", reason, detail: {} }, JSON.stringify(token));
    }
    assert.equal(store.current, text, `${JSON.stringify(token)}: the state is untouched`);
    const owner = await decideLogin(deps, req(code, {}, { sshAuthInfo: KEY_INFO, sshCaller: true }));
    assert.equal(owner.outcome, "accepted", `${JSON.stringify(token)}: the owner is not locked out`);
  }
  // A well-formed wrong code after every other factor passed still counts (the reference's RATE_LIMIT).
  const { deps, store } = rig(text, "s3cret");
  const wrong = String((Number(code) + 1) % 1e6).padStart(6, "0");
  await decideLogin(deps, req(wrong));
  assert.match(store.current!, new RegExp(`RATE_LIMIT 3 30 ${NOW_MS / 1000}$`, "m"));
});

test("password + code: a wrong password with a scratch code keeps the scratch code", async () => {
  const text = `${SECRET}\n" TOTP_AUTH\n12345678\n`;
  const { deps, calls, store } = rig(text, "pw");
  assert.equal(splitAt(text, "pw12345678"), 8, "an unused scratch code at the end splits at 8");
  assert.equal(splitAt(text, "pw12345679"), 6);
  assert.equal((await decideLogin(deps, req("px12345678", { password: true }))).outcome, "rejected");
  assert.equal(store.current, text);
  assert.equal((await decideLogin(deps, req("pw12345678", { password: true }))).outcome, "accepted");
  assert.equal(store.current, `${SECRET}\n" TOTP_AUTH\n`);
  assert.deepEqual(calls.password, ["px", "pw"]);
});

test("nullok: with password the whole token is the password; code-only says nothing else was checked", async () => {
  let r = rig(null, "only-pw");
  assert.deepEqual(await decideLogin(r.deps, req("anything", { password: true, nullok: true })), { outcome: "rejected", reason: "password", detail: {} });
  assert.equal((await decideLogin(r.deps, req("only-pw", { password: true, nullok: true }))).outcome, "accepted");
  assert.deepEqual(r.calls.password, ["anything", "only-pw"]);
  r = rig(null, "only-pw");
  assert.deepEqual(await decideLogin(r.deps, req("only-pw", { password: true })), { outcome: "rejected", reason: "not-enrolled", detail: {} });
  const bare = await decideLogin(rig(null).deps, req("", { nullok: true }));
  assert.deepEqual(logOf(bare, false), { level: "warning", fields: { result: "accepted", via: "nullok", warning: "no-other-factor-checked" } });
  const withKey = await decideLogin(rig(null).deps, req("", { nullok: true }, { sshAuthInfo: KEY_INFO }));
  assert.deepEqual(logOf(withKey, false), { level: "info", fields: { result: "accepted", via: "nullok", warning: undefined } });
});

test("user names that could leave a directory are refused before any lookup", async () => {
  for (const user of ["", ".", "..", "../x", "a/b", "x\ny", "x\u0000", "x".repeat(257)]) {
    const { deps, calls } = rig(null);
    const d = await decideLogin(deps, { ...req("123456"), user });
    assert.equal(d.outcome === "rejected" && d.reason, "invalid-user-name", JSON.stringify(user));
    assert.equal(calls.open, 0);
  }
  assert.equal((await decideLogin(rig(null).deps, { ...req("123456"), user: "bob" })).outcome === "rejected", true);
});
