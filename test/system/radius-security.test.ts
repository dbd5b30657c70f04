// otpgate radius attacked the way a local user or a network client without the shared secret can:
// forged Access-Requests (lock-out, flood), a symlink race on the state path, timing, log forging,
// squatting the port. Each test failed on the code before the fix (see the commit messages).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { ACCESS_ACCEPT, ACCESS_REJECT } from "../../src/adapters/radius/packet.js";
import { ask, forge, median, NOBODY, randomPort, sleep, startRadius } from "../helpers/radius.js";
import { CLI, oathHotp, oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

const firstLine = (path: string) => readFileSync(path, "latin1").split("\n")[0]!;

function enroll(t: TestContext, flags: string[], state?: string) {
  const user = throwawayUser(t);
  const r = runCli(["enroll", "--user", user.name, ...(state ? ["-s", state] : []), "-q", ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return user;
}

describe("otpgate radius under attack", () => {
  test("forged Access-Requests (wrong secret) from an unprivileged user change no state and cannot lock the owner out", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const user = enroll(t, ["-t", "-d", "-W", "-r", "3", "-R", "30"]);
    const state = join(user.home, ".google_authenticator");
    const before = readFileSync(state);
    const server = await startRadius(t);
    const sent = await forge(server.port, { users: [user.name], count: 40, sockets: 8 });
    assert.equal(sent, 40);
    await sleep(500);
    assert.equal(readFileSync(state, "latin1"), before.toString("latin1"), "the state file is byte-identical after 40 forged packets");
    const answer = await ask(server.port, server.secret, user.name, oathTotp(firstLine(state)));
    assert.equal(answer.code, ACCESS_ACCEPT, "the owner's right code is accepted");
  });

  test("a user swapping ~/.otp for a symlink to a root-only directory during logins: root creates nothing there", { timeout: 90_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const user = throwawayUser(t);
    mkdirSync(join(user.home, ".otp"), { mode: 0o700 });
    chownSync(join(user.home, ".otp"), user.uid, user.gid);
    const r = runCli(["enroll", "--user", user.name, "-s", "~/.otp/ga", "-c", "-W", "-u", "-q"]);
    assert.equal(r.status, 0, r.stderr);
    const rootOnly = tempDir(t, "otpgate-rootonly-"); // mode 0700, owned by root
    const created: string[] = [];
    const watcher = watch(rootOnly, (_event, name) => created.push(String(name)));
    t.after(() => watcher.close());
    const server = await startRadius(t, ["--state", "~/.otp/ga"]);
    // The user's racer: atomically exchanges ~/.otp with a symlink to the root-only directory
    // (renameat2 RENAME_EXCHANGE, so the path always exists), as fast as it can, for at most 25 s.
    const racerScript = [
      "import ctypes, os, time",
      "libc = ctypes.CDLL(None, use_errno=True)",
      `os.chdir(${JSON.stringify(user.home)})`,
      `os.symlink(${JSON.stringify(rootOnly)}, ".otp.swap")`,
      "end = time.time() + 25",
      "n = 0",
      "while time.time() < end:",
      "    for _ in range(1000):",
      "        libc.renameat2(-100, b'.otp', -100, b'.otp.swap', 2)",
      "    n += 1000",
      "    if os.path.islink('.otp'): libc.renameat2(-100, b'.otp', -100, b'.otp.swap', 2)",
      "print(n)",
    ].join("\n");
    const racer = spawn("/usr/bin/python3", ["-c", racerScript], { uid: user.uid, gid: user.gid, stdio: ["ignore", "pipe", "inherit"] });
    let swaps = "";
    racer.stdout!.on("data", (d: Buffer) => (swaps += d.toString()));
    const racerDone = new Promise<void>((res) => racer.on("exit", () => res()));
    t.after(() => racer.kill("SIGKILL"));
    let logins = 0;
    let running = true;
    void racerDone.then(() => (running = false));
    const worker = async () => {
      while (running && created.length === 0) {
        await ask(server.port, server.secret, user.name, "000000", 2000);
        logins++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    racer.kill("SIGKILL");
    await racerDone;
    await sleep(200);
    t.diagnostic(`${logins} logins during ${swaps.trim() || "(killed early)"} swaps; created in the root-only directory: ${JSON.stringify(created)}`);
    assert.deepEqual(created, [], "root created or renamed nothing in the root-only directory");
    assert.deepEqual(readdirSync(rootOnly), []);
    assert.ok(logins >= 100, `the race was exercised (${logins} logins)`);
    // Still works once the user stops racing: the state is the user's, owned by the user.
    const secret = firstLine(join(user.home, ".otp/ga"));
    const counter = Number(/^" HOTP_COUNTER (\d+)$/m.exec(readFileSync(join(user.home, ".otp/ga"), "latin1"))![1]);
    assert.equal((await ask(server.port, server.secret, user.name, oathHotp(secret, counter))).code, ACCESS_ACCEPT);
  });

  test("a 5 s flood of forged packets from an unprivileged user: legitimate logins answered promptly, a bounded number of processes", { timeout: 90_000 }, async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const user = enroll(t, ["-t", "-d", "-W", "-u"]);
    const traceDir = tempDir(t, "otpgate-strace-");
    const trace = join(traceDir, "trace");
    const server = await startRadius(t, [], ["/usr/bin/strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=execve", "-o", trace]);
    const unknown = Array.from({ length: 500 }, (_, i) => `nosuch${i}x${Math.floor(Math.random() * 1e6)}`);
    const flood = forge(server.port, { users: [...unknown, user.name], ms: 5000, sockets: 16, messageAuthenticator: true });
    await sleep(500);
    const latencies: number[] = [];
    const answers: (number | null)[] = [];
    for (let i = 0; i < 10; i++) {
      const a = await ask(server.port, server.secret, user.name, "000000", 3000);
      latencies.push(a.ms);
      answers.push(a.code);
      await sleep(300);
    }
    const sent = await flood;
    const ok = await ask(server.port, server.secret, user.name, oathTotp(firstLine(join(user.home, ".google_authenticator"))));
    // Stop the traced server itself (strace only passes SIGTERM on to it in some versions).
    const traced = readFileSync(`/proc/${server.child.pid}/task/${server.child.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
    for (const pid of traced) process.kill(pid, "SIGTERM");
    await server.stop();
    const execs =
      readFileSync(trace, "utf8")
        .split("\n")
        .filter((l) => /execve\(/.test(l) && !/resumed/.test(l)).length - 1; // minus node itself
    t.diagnostic(
      `flood: ${sent} packets in 5 s; legitimate answers ${JSON.stringify(answers)}; latency max ${Math.max(...latencies).toFixed(1)} ms, median ${median(latencies).toFixed(1)} ms; processes started by the server: ${execs}`,
    );
    assert.ok(sent > 10_000, `a real flood (${sent} packets)`);
    assert.deepEqual(answers, Array(10).fill(ACCESS_REJECT), "every legitimate request was answered (wrong code: reject)");
    assert.ok(Math.max(...latencies) < 1000, `answered within 1 s (max ${Math.max(...latencies).toFixed(1)} ms)`);
    assert.equal(ok.code, ACCESS_ACCEPT, "the right code still works");
    assert.ok(execs <= 2, `the server started ${execs} processes during the flood`);
  });

  test("unknown users are answered as fast as known ones (no account-existence oracle)", { timeout: 60_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const user = enroll(t, ["-t", "-d", "-W", "-r", "10", "-R", "15"]);
    const server = await startRadius(t);
    const known: number[] = [];
    const unknownMs: number[] = [];
    for (let i = 0; i < 30; i++) {
      // Alternate, so load on the machine hits both alike; unknown names are new each time (no cache).
      const a = await ask(server.port, server.secret, user.name, "000000");
      const b = await ask(server.port, server.secret, `nosuch${i}${Math.floor(Math.random() * 1e6)}`, "000000");
      assert.equal(a.code, ACCESS_REJECT);
      assert.equal(b.code, ACCESS_REJECT);
      known.push(a.ms);
      unknownMs.push(b.ms);
    }
    const diff = median(unknownMs) - median(known);
    t.diagnostic(`median answer: known user ${median(known).toFixed(2)} ms, unknown user ${median(unknownMs).toFixed(2)} ms (difference ${diff.toFixed(2)} ms)`);
    assert.ok(Math.abs(diff) < 3, `medians differ by ${diff.toFixed(2)} ms`);
  });

  test("decisions are one escaped JSON line each on stdout: a User-Name cannot forge fields or lines", { timeout: 30_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const server = await startRadius(t);
    const names = ["x result=accepted", "y\nresult=accepted via=totp", "z\u001b[2J"];
    for (const name of names) assert.equal((await ask(server.port, server.secret, name, "123456")).code, ACCESS_REJECT);
    await sleep(200);
    const decisions = server.stdout().map((l) => JSON.parse(l.replace(/^<\d>/, "")) as Record<string, unknown>);
    assert.equal(decisions.length, names.length, server.stdout().join("\n"));
    for (const [i, d] of decisions.entries()) {
      assert.equal(d.user, names[i]);
      assert.equal(d.result, "rejected");
    }
    for (const line of server.stdout()) assert.match(line, /^[\x20-\x7e]+$/, "printable ASCII only");
  });

  test("a port taken by someone else: a clear message naming ss -ulpn", { timeout: 30_000 }, async (t) => {
    if (!systemReady(t, [])) return;
    const port = randomPort();
    const squatter = spawn(process.execPath, ["-e", `const s = require("node:dgram").createSocket("udp4"); s.bind(${port}, "127.0.0.1", () => console.log("bound"));`], {
      uid: NOBODY,
      gid: NOBODY,
      stdio: ["ignore", "pipe", "inherit"],
    });
    t.after(() => squatter.kill("SIGKILL"));
    await new Promise<void>((res) => squatter.stdout!.on("data", () => res()));
    const dir = mkdtempSync("/tmp/otpgate-squat-");
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, "s"), "0123456789abcdef0123\n", { mode: 0o600 });
    const r = runCli(["radius", "--listen", `127.0.0.1:${port}`, "--secret-file", join(dir, "s")]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use.*ss -ulpn`, "s"));
    assert.ok(existsSync(CLI));
    assert.match(runCli(["radius", "--help"]).stdout, /default 127\.0\.0\.1:1812/);
  });
});
