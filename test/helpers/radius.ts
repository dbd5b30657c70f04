// RADIUS test plumbing: start `otpgate radius` on a random loopback port with its own secret, ask it
// like pam_radius_auth does (right secret), and attack it as an unprivileged local user (a child
// process with nobody's uid sending raw UDP, no secret).

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { buildAccessRequest } from "../../src/adapters/radius/packet.js";
import { CLI, tempDir } from "./system.js";

export const NOBODY = 65534;

export interface RadiusServer {
  readonly port: number;
  readonly secret: Buffer;
  readonly child: ChildProcess;
  /** Lines the server printed on stdout so far (one JSON decision per line). */
  stdout(): string[];
  stderr(): string;
  stop(): Promise<void>;
}

export const randomPort = () => 20000 + Math.floor(Math.random() * 40000);

/** Start otpgate radius (optionally wrapped, e.g. by strace) and wait for "listening". */
export async function startRadius(t: TestContext, args: string[] = [], wrap: string[] = []): Promise<RadiusServer> {
  const dir = tempDir(t, "otpgate-radius-");
  const secret = Buffer.from(randomBytes(18).toString("base64url"));
  const secretFile = join(dir, "radius.secret");
  writeFileSync(secretFile, secret.toString() + "\n", { mode: 0o600 });
  for (let attempt = 0; ; attempt++) {
    const port = randomPort();
    const argv = [...wrap, process.execPath, CLI, "radius", "--listen", `127.0.0.1:${port}`, "--secret-file", secretFile, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    const ready = await new Promise<boolean>((resolve) => {
      child.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        if (err.includes("listening")) resolve(true);
      });
      child.once("exit", () => resolve(false));
    });
    if (!ready) {
      if (attempt < 3 && /in use/.test(err)) continue;
      throw new Error(`otpgate radius did not start: ${err}`);
    }
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    };
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    });
    return { port, secret, child, stdout: () => out.split("\n").filter(Boolean), stderr: () => err, stop };
  }
}

export interface Answer {
  /** 2 Access-Accept, 3 Access-Reject, null no answer within the timeout. */
  readonly code: number | null;
  readonly ms: number;
}

/** One Access-Request with the right secret, as pam_radius_auth sends it (no Message-Authenticator). */
export function ask(port: number, secret: Buffer, user: string, password: string, timeoutMs = 3000): Promise<Answer> {
  const socket = createSocket("udp4");
  const id = Math.floor(Math.random() * 256);
  const packet = buildAccessRequest(id, randomBytes(16), user, password, secret);
  const started = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve({ code: null, ms: ms() });
    }, timeoutMs);
    socket.on("message", (msg) => {
      if (msg[1] !== id) return;
      clearTimeout(timer);
      socket.close();
      resolve({ code: msg[0]!, ms: ms() });
    });
    socket.send(packet, port, "127.0.0.1");
  });
}

/**
 * Forged Access-Requests from an unprivileged user (uid nobody): the attacker does not know the
 * secret, so the User-Password is random bytes (it "decrypts" to garbage) and an optional
 * Message-Authenticator is random too. Sends `count` packets, or as many as it can for `ms`.
 * Resolves with how many were sent.
 */
export function forge(port: number, opts: { users: string[]; count?: number; ms?: number; sockets?: number; messageAuthenticator?: boolean }): Promise<number> {
  const script = `
const dgram = require("node:dgram"), crypto = require("node:crypto");
const [port, users, count, ms, nsock, withMa] = JSON.parse(process.argv[1]);
const attr = (t, v) => Buffer.concat([Buffer.from([t, v.length + 2]), v]);
const packet = (i) => {
  const user = users[i % users.length];
  const parts = [Buffer.from([1, i & 255, 0, 0]), crypto.randomBytes(16), attr(1, Buffer.from(user)), attr(2, crypto.randomBytes(16))];
  if (withMa && i % 2) parts.push(attr(80, crypto.randomBytes(16)));
  const p = Buffer.concat(parts); p.writeUInt16BE(p.length, 2); return p;
};
const socks = Array.from({ length: nsock }, () => dgram.createSocket("udp4"));
let sent = 0; const end = Date.now() + ms;
const burst = () => {
  for (let k = 0; k < 200 && sent < count; k++) { socks[sent % nsock].send(packet(sent), port, "127.0.0.1"); sent++; }
  if (sent < count && Date.now() < end) setTimeout(burst, 0);
  else setTimeout(() => { console.log(sent); process.exit(0); }, 200);
};
burst();`;
  const params = JSON.stringify([port, opts.users, opts.count ?? 1e9, opts.ms ?? 60_000, opts.sockets ?? 4, opts.messageAuthenticator ?? false]);
  const child = spawn(process.execPath, ["-e", script, params], { uid: NOBODY, gid: NOBODY, stdio: ["ignore", "pipe", "inherit"], cwd: "/" });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => child.on("exit", (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`forger exited ${code}`)))));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
