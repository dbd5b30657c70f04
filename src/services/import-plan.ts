// The plan of `otpgate db import` (issue 11): which state-file copies become which database
// accounts. Pure: the command collects the copies (read as their owners, or from a root-only
// directory) and the secrets' identities of the accounts already in the database, and writes what
// this plan says. Per user:
//   - one copy, or several copies with the same secret and code shape: imported (merged safely,
//     formats/ga-merge.ts);
//   - copies with different secrets (or the same secret made into codes differently): a conflict,
//     reported by host name (never a secret) and skipped, unless --prefer HOST names one of them;
//   - already in the database with another secret: a conflict unless --replace; with the same
//     secret: always skipped, --replace too (the database's state is newer; overwriting it would
//     make used codes valid again: rt1 F4). Import every host's files in one run, so they merge.

import { codeShape, mergeStateTexts, secretIdentity } from "../formats/ga-merge.js";

/** One user's state file as found on one host. */
export interface ImportCopy {
  readonly host: string;
  readonly user: string;
  /** The file's text (binary string). */
  readonly text: string;
}

/** A file that was found but could not be read or used (reported, skipped). */
export interface ImportFailure {
  readonly host: string;
  readonly user: string;
  readonly problem: string;
}

export interface ImportRequest {
  readonly copies: readonly ImportCopy[];
  readonly failures?: readonly ImportFailure[];
  /** --prefer HOST: its copy wins when the secrets differ. */
  readonly prefer?: string | undefined;
  /** --replace: overwrite an account the database has with another secret. */
  readonly replace?: boolean;
  /** secretIdentity of each user's account in the database (absent or null: not enrolled there). */
  readonly existing: ReadonlyMap<string, string | null>;
}

export type ImportStep =
  | {
      readonly kind: "import";
      readonly user: string;
      /** Hosts whose copies went into `text` (more than one: merged). */
      readonly hosts: readonly string[];
      readonly text: string;
      /** "create": a new account; "replace": overwrite the database's account (--replace). */
      readonly mode: "create" | "replace";
      readonly scratchCodesDropped: number;
      /** Hosts whose copies (another secret) were passed over because of --prefer. */
      readonly overruled: readonly string[];
    }
  | { readonly kind: "skip"; readonly user: string; readonly hosts: readonly string[]; readonly reason: string }
  | { readonly kind: "conflict"; readonly user: string; readonly hosts: readonly string[]; readonly reason: string };

export interface ImportPlan {
  readonly steps: readonly ImportStep[];
}

const list = (hosts: readonly string[]) => hosts.join(", ");

function planUser(user: string, copies: readonly ImportCopy[], request: ImportRequest): ImportStep {
  const hosts = copies.map((c) => c.host);
  // Group the copies by secret (no secret ever leaves this function, only host names).
  const groups = new Map<string, ImportCopy[]>();
  for (const copy of copies) {
    const id = secretIdentity(copy.text)!;
    groups.set(id, [...(groups.get(id) ?? []), copy]);
  }
  let chosen: ImportCopy[];
  let overruled: string[] = [];
  if (groups.size > 1) {
    const preferred = request.prefer === undefined ? undefined : [...groups.values()].find((g) => g.some((c) => c.host === request.prefer));
    if (!preferred) {
      const how = request.prefer === undefined ? "choose the one that wins with --prefer HOST" : `--prefer ${request.prefer} is not one of them`;
      return { kind: "conflict", user, hosts, reason: `different secrets on ${list(hosts)}; skipped (${how})` };
    }
    chosen = preferred;
    overruled = copies.filter((c) => !preferred.includes(c)).map((c) => c.host);
  } else {
    chosen = [...groups.values()][0]!;
  }
  // The preferred host's copy is the base of a merge; otherwise the hosts in name order.
  chosen = [...chosen].sort((a, b) => (a.host === request.prefer ? -1 : b.host === request.prefer ? 1 : a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  const chosenHosts = chosen.map((c) => c.host);
  const shapes = new Set(chosen.map((c) => codeShape(c.text)));
  if (shapes.size > 1 || shapes.has(null)) {
    return {
      kind: "conflict",
      user,
      hosts: chosenHosts,
      reason: `the same secret but different code settings (time/counter, algorithm, digits or step) on ${list(chosenHosts)}; skipped: make the files agree, or import one with --file`,
    };
  }
  const merged = mergeStateTexts(chosen.map((c) => c.text));
  const existing = request.existing.get(user) ?? null;
  let mode: "create" | "replace" = "create";
  if (existing !== null) {
    // The same secret: the database's state is the newer one (codes used against it, its counter,
    // its remaining emergency codes), so the file never overwrites it, --replace or not (rt1 F4).
    if (existing === secretIdentity(merged.text)) {
      const why = request.replace
        ? "; --replace is only for another secret (the file's older state would make used codes valid again): to start over, re-enroll or regenerate codes"
        : " (import every host's files in one run so they merge)";
      return { kind: "skip", user, hosts: chosenHosts, reason: `already in the database with this secret${why}` };
    }
    if (!request.replace) return { kind: "conflict", user, hosts: chosenHosts, reason: "already in the database with another secret; skipped (--replace overwrites it)" };
    mode = "replace";
  }
  return { kind: "import", user, hosts: chosenHosts, text: merged.text, mode, scratchCodesDropped: merged.scratchCodesDropped, overruled };
}

export function planImport(request: ImportRequest): ImportPlan {
  const byUser = new Map<string, ImportCopy[]>();
  const steps: ImportStep[] = [];
  const unusable = new Map<string, string[]>();
  for (const copy of request.copies) {
    if (secretIdentity(copy.text) === null) {
      unusable.set(copy.user, [...(unusable.get(copy.user) ?? []), `${copy.host}: line 1 is not a base32 secret`]);
      continue;
    }
    byUser.set(copy.user, [...(byUser.get(copy.user) ?? []), copy]);
  }
  for (const f of request.failures ?? []) unusable.set(f.user, [...(unusable.get(f.user) ?? []), `${f.host}: ${f.problem}`]);
  const users = [...new Set([...byUser.keys(), ...unusable.keys()])].sort();
  for (const user of users) {
    const problems = unusable.get(user);
    if (problems) {
      // A copy that cannot be read may be the one with the newest state: nothing is imported for the user.
      const hosts = [...(byUser.get(user) ?? []).map((c) => c.host), ...problems.map((p) => p.slice(0, p.indexOf(":")))];
      steps.push({ kind: "conflict", user, hosts, reason: `unusable file (${problems.join("; ")}); skipped: fix or remove that copy and import again` });
      continue;
    }
    steps.push(planUser(user, byUser.get(user)!, request));
  }
  return { steps };
}

export interface ImportCounts {
  readonly imported: number;
  readonly merged: number;
  readonly skipped: number;
  readonly conflicts: number;
}

export function countPlan(steps: readonly ImportStep[]): ImportCounts {
  const imports = steps.filter((s) => s.kind === "import");
  return {
    imported: imports.filter((s) => s.hosts.length === 1).length,
    merged: imports.filter((s) => s.hosts.length > 1).length,
    skipped: steps.filter((s) => s.kind === "skip").length,
    conflicts: steps.filter((s) => s.kind === "conflict").length,
  };
}

/** One line for a step (no secret, no code): `verb` is "imported" or, for --dry-run, "would import". */
export function describeStep(step: ImportStep, dryRun: boolean): string {
  switch (step.kind) {
    case "import": {
      const verb = step.hosts.length > 1 ? (dryRun ? "would merge" : "merged") : dryRun ? "would import" : "imported";
      const parts = [`${step.user}: ${verb} from ${list(step.hosts)}${step.mode === "replace" ? ", replacing the database's account (--replace)" : ""}`];
      if (step.scratchCodesDropped > 0) parts.push(`${step.scratchCodesDropped} emergency code(s) left out (already used on another host)`);
      if (step.overruled.length > 0) parts.push(`the other secret on ${list(step.overruled)} passed over (--prefer)`);
      return parts.join("; ");
    }
    case "skip":
      return `${step.user}: skipped: ${step.reason}`;
    case "conflict":
      return `${step.user}: CONFLICT: ${step.reason}`;
  }
}
