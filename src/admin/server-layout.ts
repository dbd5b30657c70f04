// Doctor's look at the running layout of otpgate server and the gateway: the API socket where the
// unit puts it (a socket, root's, mode 0660, in a 0750 directory, both of the socket group), a
// server that answers /v1/health on it, and no otpgate gateway process running as root.

import { spawnSync } from "node:child_process";
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Finding } from "./doctor.js";

export interface LayoutProbe {
  readonly socket: string;
  /** gid of the socket group, or null when there is no such group. */
  readonly groupGid: number | null;
  readonly groupName: string;
  /** GET /v1/health on the socket: null when it answered 200 with ok, else what went wrong. */
  health(socket: string): string | null;
  /** Processes that look like `otpgate gateway`: pid and effective uid. */
  gateways(): { pid: number; euid: number }[];
}

const HEALTH_SCRIPT = `require("node:http").get({ socketPath: process.argv[1], path: "/v1/health", timeout: 3000 }, (r) => {
  let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => { try { process.stdout.write(r.statusCode === 200 && JSON.parse(b).ok === true ? "ok" : "status " + r.statusCode); } catch { process.stdout.write("not JSON"); } });
}).on("error", (e) => process.stdout.write(e.code || e.message)).on("timeout", function () { process.stdout.write("timeout"); this.destroy(); });`;

export function systemLayoutProbe(socket: string, groupName: string): LayoutProbe {
  let groupGid: number | null = null;
  try {
    for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
      const f = line.split(":");
      if (f[0] === groupName && /^[0-9]+$/.test(f[2] ?? "")) groupGid = Number(f[2]);
    }
  } catch {
    groupGid = null;
  }
  return {
    socket,
    groupGid,
    groupName,
    health: (path) => {
      const r = spawnSync(process.execPath, ["-e", HEALTH_SCRIPT, path], { encoding: "utf8", timeout: 6000 });
      const out = (r.stdout ?? "").trim();
      return out === "ok" ? null : out || `no answer (${r.error?.message ?? `exit ${r.status}`})`;
    },
    gateways: () => {
      const found: { pid: number; euid: number }[] = [];
      let pids: string[] = [];
      try {
        pids = readdirSync("/proc").filter((p) => /^[0-9]+$/.test(p));
      } catch {
        return found;
      }
      for (const pid of pids) {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0");
          const i = argv.findIndex((a) => /otpgate(\.cjs)?$|otpgate-core\.cjs$/.test(a));
          if (i < 0 || argv[i + 1] !== "gateway" || (argv[i + 2] !== undefined && /^(keys|sessions)$/.test(argv[i + 2]!))) continue;
          const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
          if (uid) found.push({ pid: Number(pid), euid: Number(uid[2]) });
        } catch {
          // gone meanwhile
        }
      }
      return found;
    },
  };
}

export function checkServerLayout(probe: LayoutProbe): Finding[] {
  const check = "server";
  const findings: Finding[] = [];
  const { socket } = probe;
  let st;
  try {
    st = lstatSync(socket);
  } catch {
    findings.push({
      check,
      severity: "info",
      message: `no otpgate server API socket at ${socket} (not running, or RADIUS only)`,
      fix: "for the unprivileged gateway: groupadd --system otpgate; systemctl enable --now otpgate-server",
    });
  }
  if (st) {
    const problems: string[] = [];
    if (!st.isSocket()) problems.push("is not a socket");
    if (st.uid !== 0) problems.push(`belongs to uid ${st.uid}, not root`);
    if ((st.mode & 0o777) !== 0o660) problems.push(`has mode 0${(st.mode & 0o777).toString(8)}, not 0660`);
    if (probe.groupGid === null) problems.push(`its group "${probe.groupName}" does not exist`);
    else if (st.gid !== probe.groupGid) problems.push(`has group ${st.gid}, not ${probe.groupName} (${probe.groupGid})`);
    try {
      const d = lstatSync(dirname(socket));
      if (!d.isDirectory() || d.uid !== 0 || (d.mode & 0o777) !== 0o750 || (probe.groupGid !== null && d.gid !== probe.groupGid)) {
        problems.push(`its directory ${dirname(socket)} is not 0750 root:${probe.groupName} (it is 0${(d.mode & 0o777).toString(8)} ${d.uid}:${d.gid})`);
      }
    } catch {
      problems.push("its directory cannot be checked");
    }
    if (problems.length) {
      findings.push({
        check,
        severity: "fail",
        message: `the API socket ${socket} ${problems.join("; ")}: who may ask for decisions and enrollments is not as intended`,
        fix: "restart otpgate server (it sets the socket up); check --socket-group",
      });
    } else {
      const health = probe.health(socket);
      findings.push(
        health === null
          ? { check, severity: "ok", message: `otpgate server answers on ${socket} (0660 root:${probe.groupName})` }
          : {
              check,
              severity: "fail",
              message: `otpgate server does not answer on ${socket} (${health}): the gateway refuses every login`,
              fix: "systemctl status otpgate-server; journalctl -u otpgate-server",
            },
      );
    }
  }
  for (const g of probe.gateways()) {
    findings.push(
      g.euid === 0
        ? {
            check: "gateway",
            severity: "warn",
            message: `otpgate gateway (pid ${g.pid}) runs as root: a flaw in the internet-facing process would be root's`,
            fix: "run it as its own user (the otpgate-gateway unit: User=otpgate-gw) with decision_socket: in its config",
          }
        : { check: "gateway", severity: "ok", message: `otpgate gateway (pid ${g.pid}) runs as uid ${g.euid}, not root` },
    );
  }
  return findings;
}
