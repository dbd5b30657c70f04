// Key rotation of the fleet store (otpgate db rotate-key): every secret not under the current key
// is re-encrypted, one row per short transaction under its row lock, so logins (which lock the same
// row) go on throughout, deciding on rows under the old and the new key alike. And which key ids
// rows still use (for --retire).

import { openSecret, sealSecret } from "./crypto.js";
import type { FleetKeys } from "./key-file.js";
import type { FleetPool } from "./pool.js";

export interface RotationProgress {
  readonly rotated: number;
  /** The user last re-encrypted. */
  readonly last: string;
}

/**
 * Re-encrypt under keys.current, `batch` users at a time (keyset order by user name). A row under a
 * key the file lacks stops the rotation with FleetKeyMissing; rows done so far stay done.
 */
export async function reencryptAll(pool: FleetPool, keys: FleetKeys, options: { batch?: number; afterRow?: (p: RotationProgress) => Promise<void> | void } = {}): Promise<number> {
  const batch = options.batch ?? 100;
  let after = "";
  let rotated = 0;
  for (;;) {
    const users = await pool.query<{ user_name: string }>("SELECT user_name FROM otpgate_accounts WHERE key_id <> $1 AND user_name > $2 ORDER BY user_name LIMIT $3", [keys.current, after, batch]);
    if (users.length === 0) return rotated;
    for (const { user_name: user } of users) {
      after = user;
      const done = await pool.transaction(async (client) => {
        const rows = (await client.query<{ secret: Buffer; key_id: string }>("SELECT secret, key_id FROM otpgate_accounts WHERE user_name = $1 FOR UPDATE", [user])).rows;
        const row = rows[0];
        if (row === undefined || row.key_id === keys.current) return false;
        const plain = openSecret(keys, user, row.key_id, row.secret);
        try {
          const { keyId, sealed } = sealSecret(keys, user, plain.toString("latin1"));
          await client.query("UPDATE otpgate_accounts SET secret = $2, key_id = $3, updated_at = now() WHERE user_name = $1", [user, sealed, keyId]);
        } finally {
          plain.fill(0);
        }
        return true;
      });
      if (done) {
        rotated++;
        await options.afterRow?.({ rotated, last: user });
      }
    }
  }
}

/** Key ids in use: by secrets and by emergency-code digests, with how many rows each. */
export async function keyUsage(pool: FleetPool): Promise<{ secrets: Map<string, number>; codes: Map<string, number> }> {
  const secrets = await pool.query<{ key_id: string; n: number }>("SELECT key_id, count(*)::int AS n FROM otpgate_accounts GROUP BY key_id");
  const codes = await pool.query<{ key_id: string; n: number }>("SELECT key_id, count(*)::int AS n FROM otpgate_emergency_codes GROUP BY key_id");
  return { secrets: new Map(secrets.map((r) => [r.key_id, r.n])), codes: new Map(codes.map((r) => [r.key_id, r.n])) };
}
