// otpgate server test plumbing: start it (as root, API socket in a private directory, a throwaway
// socket group, its own state and invitations directories; RADIUS off unless asked) and talk to it
// with the real client (src/adapters/server/client.ts).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { DecisionClient } from "../../src/adapters/server/client.js";
import { CLI, sh, tempDir, uniqueName } from "./system.js";

export interface StartedServer {
  readonly child: ChildProcess;
  readonly socket: string;
  readonly group: { readonly name: string; readonly gid: number };
  readonly stateDir: string;
  readonly invitesDir: string;
  readonly client: DecisionClient;
  /** JSON lines printed on stdout so far. */
  lines(): Record<string, unknown>[];
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

/** A throwaway system group, removed after the test. */
export function throwawayGroup(t: TestContext): { name: string; gid: number } {
  const name = uniqueName("otpgg").slice(0, 14);
  sh("groupadd", ["--system", name]);
  t.after(() => void spawnSync("groupdel", [name], { stdio: "ignore" }));
  const gid = Number(sh("getent", ["group", name]).split(":")[2]);
  return { name, gid };
}

export async function startServer(t: TestContext, args: string[] = [], opts: { radius?: boolean; wrap?: string[] } = {}): Promise<StartedServer> {
  const base = tempDir(t, "otpgate-server-");
  chmodSync(base, 0o755); // so that a group member can reach the socket's own directory
  const group = throwawayGroup(t);
  const socket = join(base, "run", "server.sock");
  const stateDir = join(base, "state");
  const invitesDir = join(stateDir, "invites");
  mkdirSync(invitesDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const argv = [
    ...(opts.wrap ?? []),
    process.execPath,
    CLI,
    "server",
    ...(opts.radius ? [] : ["--no-radius"]),
    "--socket",
    socket,
    "--socket-group",
    group.name,
    "--state-dir",
    stateDir,
    "--invites-dir",
    invitesDir,
    ...args,
  ];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const ready = await new Promise<boolean>((resolve) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("API listening")) resolve(true);
    });
    child.once("exit", () => resolve(false));
  });
  if (!ready) throw new Error(`otpgate server did not start: ${err}`);
  const client = new DecisionClient({ socketPath: socket, timeoutMs: 10_000 });
  const stop = async () => {
    await client.close().catch(() => {});
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  t.after(async () => {
    await client.close().catch(() => {});
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  return {
    child,
    socket,
    group,
    stateDir,
    invitesDir,
    client,
    lines: () =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stdout: () => out,
    stderr: () => err,
    stop,
  };
}

/** p50 / p99 / max of a list of milliseconds. */
export function percentiles(ms: readonly number[]): { p50: number; p99: number; max: number; n: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1]!, n: s.length };
}

export interface FleetServer extends StartedServer {
  /** The RADIUS port on 127.0.0.1 and its shared secret (local clients). */
  readonly port: number;
  readonly secret: Buffer;
}

/**
 * otpgate server on the fleet store: RADIUS on a random loopback port with its own secret, the API
 * socket, `--store url --db-key-file keys` and any further args (--db-password-file, --clients-file,
 * --listen to override the address). Retried on another port when the port was taken.
 */
export async function startFleetServer(t: TestContext, url: string, keys: string, args: string[] = []): Promise<FleetServer> {
  const dir = tempDir(t, "otpgate-fleet-server-");
  const secret = Buffer.from(randomBytes(18).toString("base64url"));
  const secretFile = join(dir, "radius.secret");
  writeFileSync(secretFile, secret.toString() + "\n", { mode: 0o600 });
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const listen = args.includes("--listen") ? [] : ["--listen", `127.0.0.1:${port}`];
    try {
      const server = await startServer(t, [...listen, "--secret-file", secretFile, "--store", url, "--db-key-file", keys, ...args], { radius: true });
      const m = /listening on \S+?:([0-9]+)/.exec(server.stderr());
      return { ...server, port: m ? Number(m[1]) : port, secret };
    } catch (err) {
      if (attempt < 3 && /in use/.test((err as Error).message)) continue;
      throw err;
    }
  }
}
