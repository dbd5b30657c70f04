// The systemd units of otpgate server and the gateway: systemd-analyze verify accepts them, the
// shipped files are the generator's output, and the server works inside its capability bounding set
// (RADIUS on a port below 1024, the API socket given to its group, decisions and enrollment as the
// user) - and not without CAP_SETUID or CAP_CHOWN, so none of them is superfluous.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ACCESS_ACCEPT } from "../../src/adapters/radius/packet.js";
import { shippedUnits } from "../../src/admin/setup/shipped-units.js";
import { gatewayUnit, SERVER_CAPABILITIES, serverUnit } from "../../src/admin/setup/systemd-unit.js";
import { ask } from "../helpers/radius.js";
import { startServer, type StartedServer } from "../helpers/server.js";
import { CLI, enrolledUser, oathTotp, ROOT, systemReady, tempDir } from "../helpers/system.js";
import { createInvite } from "../../src/stores/invite-store.js";

function verify(path: string): string[] {
  const r = spawnSync("systemd-analyze", ["verify", "--man=no", path], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", SYSTEMD_LOG_LEVEL: "warning" } });
  const name = path.slice(path.lastIndexOf("/") + 1);
  return `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.includes(name));
}

describe("systemd units for otpgate server and the gateway", () => {
  test("systemd-analyze verify accepts both; hardened as promised", (t) => {
    if (!systemReady(t, []) || !existsSync("/usr/bin/systemd-analyze")) {
      if (process.env.REQUIRE_SYSTEM_TESTS === "1") throw new Error("systemd-analyze is missing (scripts/install-test-deps.sh)");
      return;
    }
    const dir = tempDir(t, "otpgate-units-");
    const server = serverUnit(process.execPath, CLI, ["server", "--listen", "127.0.0.1:812", "--secret-file", "/etc/otpgate/radius.secret", "--state", "/srv/otp/${USER}"], {
      stateFiles: "/srv/otp/${USER}",
    });
    const gateway = gatewayUnit(process.execPath, CLI, ["gateway", "--config", "/etc/otpgate/gateway.yaml"]);
    writeFileSync(join(dir, "otpgate-server.service"), server);
    writeFileSync(join(dir, "otpgate-gateway.service"), gateway);
    assert.deepEqual(verify(join(dir, "otpgate-server.service")), []);
    assert.deepEqual(verify(join(dir, "otpgate-gateway.service")), []);
    for (const unit of [server, gateway]) {
      for (const line of ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"]) assert.ok(unit.split("\n").includes(line), line);
    }
    assert.match(server, /^CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_CHOWN CAP_NET_BIND_SERVICE$/m);
    assert.match(server, /^RuntimeDirectory=otpgate$/m);
    assert.match(server, /^ReadWritePaths=-\/home -\/root "-\/srv\/otp"$/m, "state files stay writable under ProtectSystem=strict");
    assert.doesNotMatch(server, /^ProtectHome=/m, "the server must reach home directories");
    assert.match(gateway, /^User=otpgate-gw$/m);
    assert.match(gateway, /^SupplementaryGroups=otpgate$/m);
    assert.match(gateway, /^ProtectHome=yes$/m);
    // rt2 F7: no capability kept for the gateway's whole life; a syscall filter, no view of other processes, a file limit.
    assert.match(gateway, /^CapabilityBoundingSet=$/m, "the gateway has no capability (127.0.0.1:9091 needs none)");
    assert.doesNotMatch(gateway, /^AmbientCapabilities=/m);
    assert.match(gateway, /^# .*AmbientCapabilities=CAP_NET_BIND_SERVICE$/m, "how to listen on 443 is written in the unit");
    assert.match(gateway, /^ProcSubset=pid$/m);
    const gatewayFilters = gateway.split("\n").filter((l) => l.startsWith("SystemCallFilter="));
    assert.deepEqual(gatewayFilters, ["SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources"], "the allow list first, then what the gateway never needs");
    for (const unit of [server, gateway]) {
      for (const line of ["SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM", "ProtectProc=invisible", "UMask=0077"]) assert.ok(unit.split("\n").includes(line), line);
      assert.match(unit, /^LimitNOFILE=\d+$/m);
    }
    assert.equal(server.split("\n").filter((l) => l.startsWith("SystemCallFilter=")).length, 1, "the server keeps @setuid and @chown");
  });

  test("@system-service lets through what the server needs: setuid, setgid, setgroups, chown, fchown, lchown, fchmod", (t) => {
    if (!existsSync("/usr/bin/systemd-analyze")) return t.skip("no systemd-analyze");
    const r = spawnSync("systemd-analyze", ["syscall-filter", "@system-service"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
    const listed = new Set(r.stdout.split("\n").map((l) => l.trim()));
    const expand = (group: string) =>
      spawnSync("systemd-analyze", ["syscall-filter", group], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } })
        .stdout.split("\n")
        .map((l) => l.trim());
    for (const g of [...listed].filter((l) => l.startsWith("@"))) for (const c of expand(g)) listed.add(c);
    for (const call of ["setuid", "setgid", "setgroups", "setresuid", "setresgid", "chown", "fchown", "lchown", "fchmod", "execve", "socket", "bind"]) assert.ok(listed.has(call), call);
  });

  test("the shipped units are the generator's output and are in the package", () => {
    for (const [name, text] of Object.entries(shippedUnits())) {
      assert.equal(readFileSync(join(ROOT, "packaging/systemd", name), "utf8"), text, `packaging/systemd/${name}: run node scripts/write-units.mjs`);
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { files: string[] };
    assert.ok(pkg.files.includes("packaging/"));
  });

  test(
    "the server works inside its bounding set (RADIUS below 1024, socket to its group, decisions and enrollment as the user), and fails without CAP_SETUID or CAP_CHOWN",
    { timeout: 90_000 },
    async (t) => {
      if (!systemReady(t, ["oathtool"]) || !existsSync("/usr/bin/setpriv")) return;
      const caps = SERVER_CAPABILITIES.map((c) => "+" + c.slice(4).toLowerCase()).join(",");
      const secretDir = tempDir(t, "otpgate-unitsecret-");
      const secret = "unit-test-radius-secret-123456";
      writeFileSync(join(secretDir, "radius.secret"), secret + "\n", { mode: 0o600 });
      const { user, secret: key } = enrolledUser(t);
      let server: StartedServer;
      let port = 0;
      for (let attempt = 0; ; attempt++) {
        port = 600 + Math.floor(Math.random() * 400);
        try {
          server = await startServer(t, ["--listen", `127.0.0.1:${port}`, "--secret-file", join(secretDir, "radius.secret")], {
            radius: true,
            wrap: ["setpriv", `--bounding-set=-all,${caps}`, "--inh-caps=-all", "--"],
          });
          break;
        } catch (err) {
          if (attempt < 3 && /in use/.test(String(err))) continue;
          throw err;
        }
      }
      const status = readFileSync(`/proc/${server.child.pid}/status`, "utf8");
      const bounding = BigInt("0x" + /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)![1]!);
      assert.equal(bounding, (1n << 6n) | (1n << 7n) | (1n << 0n) | (1n << 10n), "setgid(6) setuid(7) chown(0) net_bind_service(10) only");
      const answer = await ask(port, Buffer.from(secret), user.name, oathTotp(key));
      assert.equal(answer.code, ACCESS_ACCEPT, "RADIUS accept inside the bounding set");
      assert.equal(statSync(server.socket).gid, server.group.gid);
      const other = enrolledUser(t);
      assert.deepEqual(await server.client.decide({ user: other.user.name, code: oathTotp(other.secret), service: "gateway" }), { outcome: "accepted", via: "totp" });
      const fresh = enrolledUser(t).user;
      spawnSync("rm", ["-f", join(fresh.home, ".google_authenticator")]);
      const { token } = createInvite(server.invitesDir, fresh.name, { nowMs: Date.now(), ttlMs: 600_000, replace: false });
      assert.equal((await server.client.enroll({ token, secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", scratchCodes: [] })).result, "enrolled");
      assert.equal(statSync(join(fresh.home, ".google_authenticator")).uid, fresh.uid);
      await server.stop();

      for (const missing of ["setuid", "chown"]) {
        const fewer = SERVER_CAPABILITIES.map((c) => c.slice(4).toLowerCase()).filter((c) => c !== missing);
        const dir = tempDir(t, "otpgate-fewer-");
        const r = spawnSync(
          "setpriv",
          [
            `--bounding-set=-all,${fewer.map((c) => "+" + c).join(",")}`,
            "--inh-caps=-all",
            "--",
            process.execPath,
            "-e",
            fewerScript,
            CLI,
            join(dir, "run", "s.sock"),
            server.group.name,
            dir,
            user.name,
            oathTotp(key, 1),
          ],
          { encoding: "utf8", timeout: 30_000 },
        );
        process.stdout.write(`# without CAP_${missing.toUpperCase()}: ${r.stdout.trim()}\n`);
        if (missing === "setuid") assert.equal(r.stdout.split("\n")[0], "error", `without CAP_SETUID no state file can be opened as its owner: ${r.stderr}`);
        else assert.match(r.stdout, /server-exited: .*cannot give .* to group .*CAP_CHOWN/, r.stderr);
      }
    },
  );
});

// Start the server with fewer capabilities and ask for one decision; print the outcome or the failure.
const fewerScript = `
const { spawn } = require("node:child_process");
const http = require("node:http");
const [cli, sock, group, dir, user, code] = process.argv.slice(1);
const child = spawn(process.execPath, [cli, "server", "--no-radius", "--socket", sock, "--socket-group", group, "--state-dir", dir + "/state", "--invites-dir", dir + "/inv"], { stdio: ["ignore", "ignore", "pipe"] });
let err = "";
child.stderr.on("data", (d) => { err += d; if (err.includes("API listening")) ask(); });
child.on("exit", () => { console.log("server-exited: " + err.trim().split("\\n").pop()); process.exit(0); });
function ask() {
  const req = http.request({ socketPath: sock, method: "POST", path: "/v1/decide", headers: { "content-type": "application/json" } }, (res) => {
    let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => { console.log(JSON.parse(b).outcome || b); child.kill(); });
  });
  req.end(JSON.stringify({ user, code, service: "gateway" }));
}
setTimeout(() => { console.log("timeout"); child.kill(); }, 20000);
`;
