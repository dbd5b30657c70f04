// What otpgate radius cannot do for itself: keep local users' packets out of its socket. A flood of
// forged Access-Requests from one unprivileged user fills the kernel's receive queue before the
// server reads a single packet, so throttling in the process comes too late (review 2, F2: 2 x 200
// sockets, ~2M packets in 10 s, pam_radius_auth timed out). pam_radius_auth runs inside sshd (and
// RStudio's PAM helper) as root, so a loopback firewall rule that lets only uid 0 send to the
// port stops such packets before they are queued. And a port an unprivileged user may bind
// (net.ipv4.ip_unprivileged_port_start <= port) can be taken before the server starts.
// Doctor reports both; `otpgate radius --help` prints the rule.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Finding } from "./doctor.js";

export const DEFAULT_RADIUS_PORT = 1812;

/** An nftables table (for `nft -f FILE`) that drops packets to the port from every uid but root's. */
export function radiusFirewallRules(port: number = DEFAULT_RADIUS_PORT, table = "otpgate"): string {
  return [`table inet ${table} {`, "  chain output {", "    type filter hook output priority filter; policy accept;", `    oifname "lo" udp dport ${port} meta skuid != 0 drop`, "  }", "}"].join("\n");
}

export interface HardeningProbe {
  /** net.ipv4.ip_unprivileged_port_start, or null when unknown. */
  readonly unprivilegedPortStart: () => number | null;
  /** `nft list ruleset` output, or null when nft is missing or fails. */
  readonly ruleset: () => string | null;
}

export const systemProbe: HardeningProbe = {
  unprivilegedPortStart: () => {
    try {
      const n = Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "latin1").trim());
      return Number.isInteger(n) ? n : null;
    } catch {
      return null;
    }
  },
  ruleset: () => {
    for (const nft of ["/usr/sbin/nft", "/sbin/nft"]) {
      const r = spawnSync(nft, ["list", "ruleset"], { encoding: "latin1", timeout: 5000 });
      if (!r.error) return r.status === 0 ? r.stdout : null;
    }
    return null;
  },
};

/** True when a rule in the ruleset drops UDP to `port` from senders other than uid 0 (output hook). */
export function hasUidRule(ruleset: string, port: number): boolean {
  const lines = ruleset.split("\n");
  let hook: string | null = null;
  for (const line of lines) {
    const h = /type\s+filter\s+hook\s+(\w+)/.exec(line);
    if (h) hook = h[1]!;
    if (/^\s*chain\s/.test(line)) hook = null;
    if (hook !== "output") continue;
    const dport = /udp dport (\{([^}]*)\}|(\d+))/.exec(line);
    const ports = dport ? (dport[2] ?? dport[3] ?? "").split(/[,\s]+/).filter(Boolean) : [];
    if (!ports.includes(String(port))) continue;
    if (/meta skuid != (0|root)\b/.test(line) && /\bdrop\b/.test(line)) return true;
  }
  return false;
}

/** The port `otpgate radius` / `otpgate server` listens on according to its systemd unit (null: no such unit, or no RADIUS). */
export function radiusUnitPort(unitText: string): number | null {
  const exec = /^ExecStart=[-@:+!]*(.*)$/m.exec(unitText)?.[1];
  const words = (exec ?? "")
    .trim()
    .split(/\s+/)
    .map((w) => w.replace(/^"(.*)"$/, "$1"));
  if (!words.includes("radius") && !words.includes("server")) return null;
  if (words.includes("--no-radius")) return null;
  const i = words.findIndex((w) => w === "--listen" || w.startsWith("--listen="));
  const listen = i < 0 ? null : words[i]!.startsWith("--listen=") ? words[i]!.slice("--listen=".length) : (words[i + 1] ?? "");
  const port = listen === null ? DEFAULT_RADIUS_PORT : Number(/:(\d{1,5})$/.exec(listen)?.[1] ?? NaN);
  return Number.isInteger(port) ? port : DEFAULT_RADIUS_PORT;
}

/** Doctor's findings for a radius service on `port`. */
export function radiusHardeningFindings(port: number, probe: HardeningProbe = systemProbe): Finding[] {
  const check = "radius";
  const findings: Finding[] = [];
  const start = probe.unprivilegedPortStart();
  if (start !== null && start <= port) {
    findings.push({
      check,
      severity: "warn",
      message: `the RADIUS port ${port} can be bound by any local user (net.ipv4.ip_unprivileged_port_start is ${start}): a user could take it before otpgate radius starts and make every login fail (without the shared secret it can neither read the codes nor answer)`,
      fix: `listen on a port below ${start} (otpgate radius --listen 127.0.0.1:PORT and the same port in pam_radius.conf)${start < 1024 ? ", and set the sysctl net.ipv4.ip_unprivileged_port_start back to 1024" : ""}`,
    });
  }
  const rules = probe.ruleset();
  if (rules !== null && hasUidRule(rules, port)) {
    findings.push({ check, severity: "ok", message: `only root can send packets to the RADIUS port ${port} on loopback (nftables skuid rule)` });
  } else {
    findings.push({
      check,
      severity: "warn",
      message: `${rules === null ? "cannot read the nftables ruleset (nft missing or not root), and without" : "no"} an nftables rule that lets only root send to UDP port ${port}${rules === null ? "" : ","} any local user can flood otpgate radius with forged packets and make logins time out`,
      fix: `load this table at boot (e.g. in /etc/nftables.conf): ${radiusFirewallRules(port).replace(/\n\s*/g, " ")}`,
    });
  }
  return findings;
}

/** The findings for the unit setup writes, or none when there is no radius unit. */
export function checkRadiusHardening(unit: string, probe: HardeningProbe = systemProbe): Finding[] {
  let text: string;
  try {
    text = readFileSync(unit, "latin1");
  } catch {
    return [];
  }
  const port = radiusUnitPort(text);
  return port === null ? [] : radiusHardeningFindings(port, probe);
}
