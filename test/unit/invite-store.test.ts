// Enrollment invitations on disk: one use, expiry, one pending invitation per user, claims that
// either finish or give the invitation back, and a directory that must be private.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { claimInvite, createInvite, findInvite, inviteId, listInvites, revokeInvites } from "../../src/stores/invite-store.js";

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const DAY = 86_400_000;

function invitesDir(t: { after(fn: () => void): void }): string {
  const base = mkdtempSync(join(tmpdir(), "otpgate-inv-"));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  return join(base, "invites");
}

test("an invitation is found by its token until it expires; the file is named by the token's hash only", (t) => {
  const dir = invitesDir(t);
  const { token, invite } = createInvite(dir, "alice", { nowMs: T0, ttlMs: DAY, replace: false });
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(readdirSync(dir), [inviteId(token)]);
  assert.ok(!readFileSync(join(dir, invite.id), "utf8").includes(token), "the token is not stored");
  assert.deepEqual(findInvite(dir, token, T0 + DAY - 1), invite);
  assert.equal(findInvite(dir, token.slice(0, -1) + (token.endsWith("A") ? "B" : "A"), T0), null, "another token");
  assert.equal(findInvite(dir, "../../etc/passwd", T0), null, "not a token");
  assert.equal(findInvite(dir, token, T0 + DAY), null, "expired");
  assert.deepEqual(readdirSync(dir), [], "and deleted");
});

test("one pending invitation per user: a new one replaces the old; list and revoke", (t) => {
  const dir = invitesDir(t);
  const first = createInvite(dir, "alice", { nowMs: T0, ttlMs: DAY, replace: false });
  const second = createInvite(dir, "alice", { nowMs: T0 + 1, ttlMs: DAY, replace: true });
  createInvite(dir, "bob", { nowMs: T0 + 2, ttlMs: 60_000, replace: false });
  assert.equal(findInvite(dir, first.token, T0 + 5), null, "the earlier link stops working");
  assert.equal(findInvite(dir, second.token, T0 + 5)?.replace, true);
  assert.deepEqual(
    listInvites(dir, T0 + 5).map((i) => i.user),
    ["alice", "bob"],
  );
  assert.deepEqual(
    listInvites(dir, T0 + 120_000).map((i) => i.user),
    ["alice"],
    "bob's expired and is cleaned up",
  );
  assert.equal(revokeInvites(dir, "alice", T0 + 10), 1);
  assert.equal(findInvite(dir, second.token, T0 + 10), null);
  assert.equal(revokeInvites(dir, "alice", T0 + 10), 0);
});

test("a claim is exclusive; release gives the invitation back, done removes it", (t) => {
  const dir = invitesDir(t);
  const { token, invite } = createInvite(dir, "alice", { nowMs: T0, ttlMs: DAY, replace: false });
  const claim = claimInvite(dir, invite);
  assert.ok(claim);
  assert.equal(claimInvite(dir, invite), null, "a second claim loses");
  assert.equal(findInvite(dir, token, T0), null, "a claimed invitation is not pending");
  assert.deepEqual(listInvites(dir, T0), []);
  claim.release();
  assert.deepEqual(findInvite(dir, token, T0), invite);
  const again = claimInvite(dir, invite)!;
  again.done();
  assert.equal(findInvite(dir, token, T0), null);
  assert.deepEqual(readdirSync(dir), []);
});

test("the directory is created 0700 and refused when others can read it; junk files are ignored or removed", (t) => {
  const dir = invitesDir(t);
  assert.throws(() => listInvites(dir, T0), /does not exist \(otpgate invite creates it\)/);
  createInvite(dir, "alice", { nowMs: T0, ttlMs: DAY, replace: false });
  writeFileSync(join(dir, "a".repeat(64)), "not json");
  writeFileSync(join(dir, "README"), "x");
  assert.deepEqual(
    listInvites(dir, T0).map((i) => i.user),
    ["alice"],
  );
  assert.deepEqual(readdirSync(dir).sort(), ["README", readdirSync(dir).find((n) => n.length === 64)!].sort(), "the malformed invitation was removed");
  chmodSync(dir, 0o755);
  assert.throws(() => createInvite(dir, "bob", { nowMs: T0, ttlMs: DAY, replace: false }), /must belong to uid \d+ with mode 0700/);
  assert.throws(() => listInvites(dir, T0), /chmod 700/);
});
