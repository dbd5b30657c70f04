// The gateway's journal of revocations not yet in the shared state (issue 11, RT2 F1): a logout or
// "log out everywhere" made while the database cannot be reached is written here (atomically,
// mode 0600, in the gateway's own state directory next to gateway.keys) before the user is told
// they are logged out, so a restart before the database returns neither forgets it on this instance
// nor fails to hand it to the others. One JSON object per line; the file is rewritten whole.

import { dirname, join } from "node:path";
import type { Revocation } from "../ports/gateway-state.js";
import { readPrivateFile, writePrivateFile, PrivateFileError } from "../platform/private-file.js";
import { removeQuietly } from "../platform/atomic-file.js";
import { ConfigError } from "../core/errors.js";

const WHAT = "the gateway's revocations not yet in the shared state";
/** At most this many revocations are kept (the oldest beyond it are dropped, and the drop is logged). */
export const MAX_JOURNAL = 10_000;
const MAX_BYTES = MAX_JOURNAL * 512;

/** Where the journal is: next to keys_file (the gateway's state directory). */
export function journalPathOf(keysFile: string): string {
  return join(dirname(keysFile), "gateway.pending-revocations");
}

export interface RevocationJournal {
  readonly path: string;
  /** What was journaled before (empty when there is no file). Throws ConfigError for a file that cannot be trusted. */
  load(): Revocation[];
  /** Replace the journal with `revocations` (none: the file is removed). Throws ConfigError. */
  save(revocations: readonly Revocation[]): void;
}

function parseLine(line: string): Revocation | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  const num = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);
  if (o["kind"] === "session" && typeof o["sid"] === "string" && num(o["until"])) return { kind: "session", sid: o["sid"], until: o["until"] };
  if (o["kind"] === "user" && typeof o["user"] === "string" && num(o["at"]) && num(o["until"])) return { kind: "user", user: o["user"], at: o["at"], until: o["until"] };
  return null;
}

export function fileJournal(path: string): RevocationJournal {
  return {
    path,
    load() {
      let file;
      try {
        file = readPrivateFile(path, WHAT, MAX_BYTES);
      } catch (err) {
        if (err instanceof PrivateFileError) throw new ConfigError(`${err.message}; it holds logouts not yet written to the shared state: fix it, do not delete it`);
        throw err;
      }
      if (!file) return [];
      const out: Revocation[] = [];
      for (const line of file.bytes.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        const r = parseLine(line);
        if (!r) throw new ConfigError(`${path} (${WHAT}) has a line that is not a revocation; it was not written by otpgate: move it away after checking it`);
        out.push(r);
      }
      return out;
    },
    save(revocations) {
      if (!revocations.length) {
        removeQuietly(path);
        return;
      }
      writePrivateFile(path, revocations.map((r) => JSON.stringify(r)).join("\n") + "\n", WHAT);
    },
  };
}
