// An in-memory account store (tests, and a reference for the store contract).

import type { AccountStore, CommitResult, LockedAccount } from "../ports/index.js";

export class MemoryAccountStore implements AccountStore {
  private version = 0;
  private locked: Promise<void> = Promise.resolve();

  constructor(
    private text: string | null,
    readonly location = "memory",
  ) {}

  /** The current text (for assertions). */
  get current(): string | null {
    return this.text;
  }

  /** Change the text as another writer would, without the lock. */
  externalWrite(text: string): void {
    this.text = text;
    this.version++;
  }

  async acquire(): Promise<LockedAccount | null> {
    let release!: () => void;
    const previous = this.locked;
    this.locked = new Promise<void>((r) => (release = r));
    await previous;
    if (this.text === null) {
      release();
      return null;
    }
    const version = this.version;
    return {
      text: this.text,
      version: String(version),
      location: this.location,
      commit: async (text: string): Promise<CommitResult> => {
        if (this.version !== version) return { ok: false, conflict: true };
        this.text = text;
        this.version++;
        return { ok: true };
      },
      release: async () => release(),
    };
  }
}
