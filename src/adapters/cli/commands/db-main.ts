// otpgate db's work (runs in dist/otpgate-fleet.cjs; db.ts parses --help): migrate, rotate-key,
// audit on the fleet database.

import { ConfigError, UsageError, type ExitCode } from "../../../core/errors.js";
import { printable, printableJson } from "../../../core/printable.js";
import type { AuditRecord } from "../../../ports/fleet.js";
import { connectFleetStore } from "../../../stores/pg/connect.js";
import { appendKey, createKeyFile, readKeyFile, removeKeys } from "../../../stores/pg/key-file.js";
import { migrate } from "../../../stores/pg/migrations.js";
import { createPool } from "../../../stores/pg/pool.js";
import { keyUsage, reencryptAll } from "../../../stores/pg/rotate.js";
import { parse } from "../args.js";
import type { Output } from "../output.js";
import { fleetOptionsOf } from "../store-options.js";
import { options } from "./db.js";

type Values = ReturnType<typeof parse<typeof options>>["values"];

const ONLY: Readonly<Record<string, readonly (keyof typeof options)[]>> = {
  migrate: ["create-key-file"],
  "rotate-key": ["add", "retire"],
  audit: ["user", "since", "limit", "json", "prune", "retention-days"],
};

function checkFlags(sub: string, values: Values): void {
  for (const [other, flags] of Object.entries(ONLY)) {
    if (other === sub) continue;
    for (const flag of flags) if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with otpgate db ${other}, not db ${sub}; see otpgate db --help`);
  }
}

/** --since: 30m, 1h, 2d, 1w (before `nowMs`) or an ISO 8601 time; Unix ms. */
export function parseSince(value: string, nowMs: number): number {
  const m = /^([0-9]{1,6})([smhdw])$/.exec(value);
  if (m) return nowMs - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "s" | "m" | "h" | "d" | "w"];
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?$/.test(value)) {
    const t = Date.parse(value);
    if (Number.isFinite(t)) return t;
  }
  throw new UsageError(`--since ${JSON.stringify(value)}: give a duration (30m, 1h, 2d, 1w) or an ISO time (2026-05-01T08:00Z)`);
}

function count(flag: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]{1,7}$/.test(value) || Number(value) > max) throw new UsageError(`--${flag} must be a number from 0 to ${max}, not ${JSON.stringify(value)}`);
  return Number(value);
}

const requireStore = (values: Values) => {
  const connect = fleetOptionsOf(values);
  if (connect === null) throw new UsageError("otpgate db needs --store postgres://USER@HOST:PORT/DATABASE (the fleet database)");
  return connect;
};

export async function dbMain(argv: string[], io: Output): Promise<ExitCode> {
  const { values, positionals } = parse("db", argv, options);
  const sub = positionals[0]!;
  checkFlags(sub, values);
  const connect = requireStore(values);
  const log = (level: string, message: string) => io.err(`otpgate db: ${level}: ${printable(message)}`);

  if (sub === "migrate") {
    const keyFile = connect.keyFile!;
    if (values["create-key-file"]) {
      if (createKeyFile(keyFile, new Date()))
        io.out(`created the key file ${keyFile}: copy it unchanged to every host that runs otpgate with this database (mode 0600, owner root); keep a copy with the database backups, apart from them`);
      else io.out(`the key file ${keyFile} exists; kept as it is`);
    }
    const pool = createPool(connect, (m) => log("warning", m));
    try {
      const applied = await migrate(pool);
      io.out(applied.length === 0 ? `the fleet database ${pool.where} is up to date` : `the fleet database ${pool.where}: applied schema migration(s) ${applied.join(", ")}`);
    } finally {
      await pool.end().catch(() => {});
    }
    if (!values["create-key-file"]) readKeyFile(keyFile); // says now, not at the first login, that it is missing or wrong
    return 0;
  }

  if (sub === "rotate-key") {
    const keyFile = connect.keyFile!;
    if (values.add && values.retire) throw new UsageError("--add and --retire are two steps of a rotation: run them one after the other (see otpgate db --help)");
    if (values.add) {
      const id = appendKey(keyFile, new Date());
      io.out(`added the key ${id} to ${keyFile}; it encrypts new secrets from now on.`);
      io.out(`Next: copy ${keyFile} to every host (unchanged, mode 0600, owner root), then run otpgate db rotate-key --store URL to re-encrypt the existing secrets.`);
      return 0;
    }
    const store = await connectFleetStore({ ...connect, log });
    try {
      const keys = store.keys();
      if (values.retire) {
        const usage = await keyUsage(store.pool);
        const unused = new Set([...keys.keys.keys()].filter((id) => id !== keys.current && !usage.secrets.has(id) && !usage.codes.has(id)));
        const removed = removeKeys(keyFile, unused);
        for (const [id] of keys.keys) {
          if (id === keys.current || unused.has(id)) continue;
          io.out(`kept ${id}: ${usage.secrets.get(id) ?? 0} secret(s) and ${usage.codes.get(id) ?? 0} emergency code(s) still use it`);
        }
        io.out(removed.length === 0 ? "no key could be retired" : `retired ${removed.join(", ")} from ${keyFile}: copy it to every host`);
        return 0;
      }
      const rotated = await reencryptAll(store.pool, keys);
      const usage = await keyUsage(store.pool);
      io.out(`re-encrypted ${rotated} secret(s) under ${keys.current}`);
      const oldCodes = [...usage.codes].filter(([id]) => id !== keys.current).reduce((n, [, c]) => n + c, 0);
      if (oldCodes > 0) io.out(`${oldCodes} emergency code(s) stay under older keys until their users get new codes (otpgate codes --regenerate); those keys stay in the file`);
      io.out("then: otpgate db rotate-key --retire --store URL removes the keys nothing uses any more");
      return 0;
    } finally {
      await store.close();
    }
  }

  // audit
  const retention = count("retention-days", values["retention-days"], 90, 100_000);
  if (values["retention-days"] !== undefined && !values.prune) throw new UsageError("--retention-days goes with --prune");
  const store = await connectFleetStore({ ...connect, keyFile: null, log, auditRetentionDays: retention });
  try {
    if (values.prune) {
      if (retention === 0) throw new ConfigError("--retention-days 0 keeps every record: nothing to prune");
      const n = await store.pruneAudit(retention);
      io.out(`deleted ${n} audit record(s) older than ${retention} days`);
      if (values.user === undefined && values.since === undefined && !values.json) return 0;
    }
    const records = await store.auditRecords({
      user: values.user,
      since: values.since === undefined ? undefined : parseSince(values.since, Date.now()),
      limit: count("limit", values.limit, 1000, 1_000_000),
    });
    for (const r of records) io.out(values.json ? printableJson(jsonOf(r)) : textOf(r));
    if (!values.json && records.length === 0) io.err("otpgate db: no audit records match");
    return 0;
  } finally {
    await store.close();
  }
}

const jsonOf = (r: AuditRecord) => ({ ...r, at: new Date(r.at).toISOString() });

const textOf = (r: AuditRecord) =>
  printable(
    `${new Date(r.at).toISOString()} ${r.user} ${r.result} ${r.reason}${r.via ? ` via ${r.via}` : ""} host=${r.host} service=${r.service}${r.clientAddress ? ` client=${r.clientAddress}` : ""}`,
  );
