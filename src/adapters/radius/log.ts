// Bounded, structured logging for otpgate radius: one JSON line per event on stdout (journald keeps
// it, with its priority when stdout is the journal), optionally also a key=value line to a syslog
// socket (--log-socket). Lines of one kind beyond a rate are counted, not written, and a summary
// "N similar lines suppressed" follows, so a flood cannot fill the disk or start a process per packet.
// Values from the network are escaped: JSON strings with everything outside printable ASCII as \u
// escapes, or logFields() for syslog, so a User-Name cannot forge a field or a line.

import { logFields, type LogValue } from "../../core/log-fields.js";
import { Throttle } from "./throttle.js";

export type Level = "info" | "notice" | "warning" | "err";
export type Fields = Readonly<Record<string, LogValue>>;

const PRIORITY: Record<Level, number> = { err: 3, warning: 4, notice: 5, info: 6 };

export interface RadiusLogOptions {
  readonly nowMs: () => number;
  /** Where a JSON line goes (stdout). */
  readonly out: (line: string) => void;
  /** Also send each written line here (syslog through --log-socket). */
  readonly syslog?: ((level: Level, message: string) => void) | undefined;
  /** sd-daemon "<N>" priority prefixes (set when stdout is the journal: $JOURNAL_STREAM). */
  readonly journal?: boolean;
  /** Lines of one kind: burst and per-second rate (default 50 and 10). */
  readonly burst?: number;
  readonly perSecond?: number;
}

/** A JSON object on one line of printable ASCII. */
export function jsonLine(fields: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(fields).replace(/[^\x20-\x7e]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

export class RadiusLog {
  private readonly throttle: Throttle;
  private readonly suppressed = new Map<string, { level: Level; count: number }>();

  constructor(private readonly options: RadiusLogOptions) {
    this.throttle = new Throttle({ burst: options.burst ?? 50, perSecond: options.perSecond ?? 10, maxKeys: 1024 });
  }

  /** Log one event; `kind` groups similar lines for the rate limit (e.g. "drop:bad-password"). */
  write(level: Level, kind: string, fields: Fields): void {
    if (!this.throttle.take(kind, this.options.nowMs())) {
      const s = this.suppressed.get(kind);
      if (s) s.count++;
      else this.suppressed.set(kind, { level, count: 1 });
      return;
    }
    this.emit(level, fields);
  }

  /** Write the "N similar lines suppressed" summaries (call every few seconds and at exit). */
  flush(): void {
    for (const [kind, s] of this.suppressed) {
      this.emit(s.level, { event: "suppressed", similar: kind, count: s.count, message: `${s.count} similar lines suppressed` });
    }
    this.suppressed.clear();
  }

  private emit(level: Level, fields: Fields): void {
    const record: Record<string, unknown> = { time: new Date(this.options.nowMs()).toISOString(), level };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) record[k] = v;
    this.options.out(`${this.options.journal ? `<${PRIORITY[level]}>` : ""}${jsonLine(record)}\n`);
    this.options.syslog?.(level, logFields({ via: "radius", ...fields }));
  }
}
