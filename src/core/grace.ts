// The reference module's grace_period: after a successful login from a host (PAM_RHOST), further
// logins from the same host within the grace period need no code. The last 10 hosts are kept in
// LAST0..LAST9 lines as "host unixtime"; the same host reuses its line, otherwise the first free
// one, otherwise the oldest.
// The host is written into the state file, so only a host that cannot break the line format is
// ever recorded or matched (red team rt1, F2: a PAM_RHOST with a newline injected an emergency
// code): 1..255 printable ASCII characters other than blank and `"` (IPv4, IPv6, DNS names fit).

import { getOption, setOption } from "../formats/ga-document.js";

interface Entry {
  readonly slot: number;
  readonly host: string;
  readonly time: number;
}

function entries(text: string): (Entry | null)[] {
  const out: (Entry | null)[] = [];
  for (let i = 0; i < 10; i++) {
    const value = getOption(text, `LAST${i}`);
    const m = value === null ? null : (/^(\S*)[ \t]+([0-9]+)$/.exec(value) ?? /^()[ \t]*([0-9]+)$/.exec(value));
    out.push(m ? { slot: i, host: m[1]!, time: Number(m[2]) } : null);
  }
  return out;
}

/** Why `rhost` cannot be used for grace_period (it is then neither recorded nor matched), or null. */
export function graceHostProblem(rhost: string): string | null {
  if (rhost.length === 0) return "is empty";
  if (rhost.length > 255) return "is longer than 255 characters";
  if (!/^[\x21\x23-\x7e]+$/.test(rhost)) return "contains a blank, a quote, a line break or a character outside printable ASCII";
  return null;
}

/** Was there a successful login from `rhost` less than `graceSeconds` ago? */
export function withinGrace(text: string, rhost: string, now: number, graceSeconds: number): boolean {
  if (graceSeconds <= 0 || graceHostProblem(rhost) !== null) return false;
  return entries(text).some((e) => e !== null && e.host === rhost && e.time + graceSeconds > now);
}

/** Record a successful login from `rhost` at `now` (the text unchanged when graceHostProblem()). */
export function recordLogin(text: string, rhost: string, now: number): string {
  if (graceHostProblem(rhost) !== null) return text;
  const all = entries(text);
  const same = all.find((e) => e !== null && e.host === rhost);
  let slot: number;
  if (same) slot = same.slot;
  else {
    const free = all.findIndex((e, i) => e === null && getOption(text, `LAST${i}`) === null);
    if (free >= 0) slot = free;
    else {
      const valid = all.filter((e): e is Entry => e !== null);
      slot = valid.length ? valid.reduce((a, b) => (b.time < a.time ? b : a)).slot : 0;
    }
  }
  return setOption(text, `LAST${slot}`, `${rhost} ${now}`);
}
