// One user's decision store on the fleet database (ports/fleet.ts, `account`): acquire() begins a
// transaction and locks the user's row (SELECT ... FOR UPDATE: a second decision for the same user,
// on any host, waits here), and renders the reference document: the decrypted secret, the option
// lines, and a line per emergency-code digest: the real code where the digest matches the code
// being decided, a filler that is never that code elsewhere. commit(text) writes the option lines
// back, deletes the digest of a code the decision used, bumps the revision and COMMITs (durable
// before the login is accepted); release() rolls back when nothing was committed. The connection
// goes back to the pool on every path (destroyed after an error).

import type { AccountStore, CommitResult, LockedAccount } from "../../ports/index.js";
import { codeDigest, openSecret, sameDigest } from "./crypto.js";
import { checkStoredOptions, emergencyCandidate, fillerFor, optionsOf, renderDocument } from "./document.js";
import type { FleetKeys } from "./key-file.js";
import { asFleetError, type FleetPool } from "./pool.js";
import type { UserGate } from "./user-gate.js";

interface AccountRow {
  secret: Buffer;
  key_id: string;
  options: string;
  revision: string;
}

interface CodeRow {
  id: string;
  key_id: string;
  digest: Buffer;
}

export class PgAccountStore implements AccountStore {
  constructor(
    private readonly pool: FleetPool,
    /** The keys; re-reads a changed key file when a key id in `needed` is missing (key-ring.ts). */
    private readonly keys: (needed: readonly string[]) => FleetKeys,
    private readonly user: string,
    private readonly entry: string | undefined,
    private readonly gate: UserGate,
  ) {}

  async acquire(): Promise<LockedAccount | null> {
    const { pool, user } = this;
    // This user's decisions in this process one at a time, before taking a connection (user-gate.ts).
    const leave = await this.gate.enter(user);
    let connection: Awaited<ReturnType<FleetPool["connect"]>>;
    try {
      connection = await pool.connect();
    } catch (err) {
      leave();
      throw err;
    }
    const { client } = connection;
    const done = (error?: unknown) => {
      connection.done(error);
      leave();
    };
    try {
      await client.query("BEGIN");
      const rows = (await client.query<AccountRow>("SELECT secret, key_id, options, revision FROM otpgate_accounts WHERE user_name = $1 FOR UPDATE", [user])).rows;
      const row = rows[0];
      if (row === undefined) {
        await client.query("ROLLBACK");
        done();
        return null;
      }
      const codes = (await client.query<CodeRow>("SELECT id, key_id, digest FROM otpgate_emergency_codes WHERE user_name = $1 ORDER BY id", [user])).rows;
      checkStoredOptions(user, row.options);
      const keys = this.keys([row.key_id, ...new Set(codes.map((c) => c.key_id))]);
      const plain = openSecret(keys, user, row.key_id, row.secret);
      const secret = plain.toString("latin1");
      plain.fill(0);
      // The code being decided, digested once per key id the user's codes use.
      const candidate = emergencyCandidate(this.entry);
      const digests = new Map<string, Buffer>();
      const real: string[] = [];
      const lines = codes.map((c) => {
        if (candidate === null) return fillerFor(null);
        let d = digests.get(c.key_id);
        if (d === undefined) digests.set(c.key_id, (d = codeDigest(keys, c.key_id, user, candidate)));
        if (sameDigest(d, c.digest)) {
          real.push(c.id);
          return candidate;
        }
        return fillerFor(candidate);
      });
      const text = renderDocument(secret, row.options, lines);
      let finished = false;
      const session: LockedAccount = {
        text,
        version: row.revision,
        location: `${pool.where} (user ${user})`,
        commit: async (next: string): Promise<CommitResult> => {
          if (finished) throw new Error("commit after the session ended");
          const { options, codes: left } = optionsOf(next, secret);
          try {
            // The real code lines the decision used (removed from the text): their digests go.
            const stillThere = candidate === null ? 0 : left.filter((c) => c === candidate).length;
            const used = real.slice(0, Math.max(0, real.length - stillThere));
            if (used.length > 0) await client.query("DELETE FROM otpgate_emergency_codes WHERE id = ANY($1::bigint[])", [used]);
            await client.query("UPDATE otpgate_accounts SET options = $2, revision = revision + 1, updated_at = now() WHERE user_name = $1", [user, options]);
            await client.query("COMMIT");
            finished = true;
            done();
            return { ok: true };
          } catch (err) {
            finished = true;
            done(err ?? true);
            throw asFleetError(err, pool.where);
          }
        },
        release: async () => {
          if (finished) return;
          finished = true;
          try {
            await client.query("ROLLBACK");
            done();
          } catch (err) {
            done(err ?? true);
          }
        },
      };
      return session;
    } catch (err) {
      // Decryption refused, key missing, connection lost: drop the session (the server rolls back).
      done(err ?? true);
      throw asFleetError(err, pool.where);
    }
  }
}
