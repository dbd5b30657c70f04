// Doctor's running-layout checks with a probe: a socket of the wrong mode or group fails, a server
// that does not answer fails, a gateway running as root is a warning.

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { checkServerLayout, type LayoutProbe } from "../../src/admin/server-layout.js";
import { radiusUnitPort } from "../../src/admin/radius-hardening.js";

const euid = process.geteuid?.() ?? 0;

async function withSocket(mode: number, run: (socket: string, gid: number) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "otpgate-layout-"));
  mkdirSync(join(dir, "run"));
  chmodSync(join(dir, "run"), 0o750);
  const socket = join(dir, "run", "server.sock");
  const server = createServer();
  await new Promise<void>((r) => server.listen(socket, () => r()));
  chmodSync(socket, mode);
  try {
    await run(socket, process.getegid?.() ?? 0);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const probe = (socket: string, gid: number, over: Partial<LayoutProbe> = {}): LayoutProbe => ({ socket, groupGid: gid, groupName: "otpgate", health: () => null, gateways: () => [], ...over });

test("a right socket that answers is ok; the wrong mode fails; a silent server fails", { skip: euid !== 0 ? "needs root (the socket must be root's)" : false }, async () => {
  await withSocket(0o660, (socket, gid) => {
    assert.deepEqual(
      checkServerLayout(probe(socket, gid)).map((f) => f.severity),
      ["ok"],
    );
    const silent = checkServerLayout(probe(socket, gid, { health: () => "ECONNREFUSED" }));
    assert.equal(silent[0]!.severity, "fail");
    assert.match(silent[0]!.message, /does not answer .*ECONNREFUSED/);
    const wrongGroup = checkServerLayout(probe(socket, gid + 1));
    assert.equal(wrongGroup[0]!.severity, "fail");
    assert.match(wrongGroup[0]!.message, /has group/);
  });
  await withSocket(0o666, (socket, gid) => {
    const f = checkServerLayout(probe(socket, gid));
    assert.equal(f[0]!.severity, "fail");
    assert.match(f[0]!.message, /mode 0666, not 0660/);
  });
});

test("no socket is information; a gateway as root is a warning, as another user ok", () => {
  const f = checkServerLayout(
    probe("/nonexistent/otpgate/server.sock", 1, {
      gateways: () => [
        { pid: 10, euid: 0 },
        { pid: 11, euid: 999 },
      ],
    }),
  );
  assert.deepEqual(
    f.map((x) => [x.check, x.severity]),
    [
      ["server", "info"],
      ["gateway", "warn"],
      ["gateway", "ok"],
    ],
  );
  assert.match(f[1]!.message, /pid 10\) runs as root/);
});

test("the radius port of a server unit; none with --no-radius", () => {
  assert.equal(radiusUnitPort('ExecStart="/usr/bin/node" "/x/otpgate.cjs" "server" "--listen" "127.0.0.1:812"\n'), 812);
  assert.equal(radiusUnitPort('ExecStart="/usr/bin/node" "/x/otpgate.cjs" "server" "--no-radius"\n'), null);
});
