// One contract every AccountStore passes: not-enrolled is null, commits are visible, a commit on a
// stale version conflicts and changes nothing, and the lock serializes sessions.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { AccountStore } from "../../src/ports/index.js";
import { FileAccountStore } from "../../src/stores/file-store.js";
import { MemoryAccountStore } from "../../src/stores/memory-store.js";

interface Harness {
  make(initial: string | null): AccountStore;
  externalWrite(text: string): void;
  read(): string | null;
  cleanup(): void;
}

const uid = process.geteuid?.() ?? 0;
const harnesses: Record<string, () => Harness> = {
  memory: () => {
    let store: MemoryAccountStore;
    return {
      make: (initial) => (store = new MemoryAccountStore(initial)),
      externalWrite: (t) => store.externalWrite(t),
      read: () => store.current,
      cleanup: () => {},
    };
  },
  file: () => {
    const dir = mkdtempSync(join(tmpdir(), "otpgate-contract-"));
    const path = join(dir, "state");
    return {
      make: (initial) => {
        if (initial !== null) writeFileSync(path, initial, { mode: 0o400 });
        return new FileAccountStore({ path, owner: { uid, name: "me" }, strictOwner: true, allowedPerm: 0o600 });
      },
      externalWrite: (t) => {
        rmSync(path, { force: true });
        writeFileSync(path, t, { mode: 0o400 });
      },
      read: () => {
        try {
          return readFileSync(path, "latin1");
        } catch {
          return null;
        }
      },
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};

for (const [name, makeHarness] of Object.entries(harnesses)) {
  describe(`AccountStore contract: ${name}`, () => {
    test("an account without state is not enrolled (null)", async () => {
      const h = makeHarness();
      assert.equal(await h.make(null).acquire(), null);
      h.cleanup();
    });

    test("a commit is visible to the next session", async () => {
      const h = makeHarness();
      const store = h.make("A\n");
      const s = await store.acquire();
      assert.equal(s!.text, "A\n");
      assert.deepEqual(await s!.commit("B\n"), { ok: true });
      await s!.release();
      const again = await store.acquire();
      assert.equal(again!.text, "B\n");
      await again!.release();
      h.cleanup();
    });

    test("a commit after another writer changed the state conflicts and changes nothing", async () => {
      const h = makeHarness();
      const store = h.make("A\n");
      const s = await store.acquire();
      h.externalWrite("A\nX\n");
      assert.deepEqual(await s!.commit("B\n"), { ok: false, conflict: true });
      await s!.release();
      assert.equal(h.read(), "A\nX\n");
      h.cleanup();
    });

    test("sessions are serialized: a second acquire waits for the first release", async () => {
      const h = makeHarness();
      const store = h.make("A\n");
      const first = await store.acquire();
      let secondHeld = false;
      const second = store.acquire().then((s) => {
        secondHeld = true;
        return s;
      });
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(secondHeld, false);
      await first!.commit("B\n");
      await first!.release();
      const s2 = await second;
      assert.equal(s2!.text, "B\n");
      await s2!.release();
      h.cleanup();
    });
  });
}
