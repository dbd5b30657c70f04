// One audit record per decision of `otpgate server` on the fleet store (issue 11): who, where
// from, through which front-end, and how it ended. Never the code: only the decision's outcome,
// reason and how it was accepted.

import type { AuditRecord } from "../../ports/fleet.js";
import type { LoginDecision } from "../../services/login.js";

export interface AuditEntry {
  readonly user: string;
  readonly service: string;
  readonly clientAddress: string | null;
  readonly decision: LoginDecision;
}

export function auditRecordOf(entry: AuditEntry, at: number, host: string): AuditRecord {
  const d = entry.decision;
  return {
    at,
    user: entry.user,
    host,
    service: entry.service,
    clientAddress: entry.clientAddress,
    result: d.outcome,
    reason: d.outcome === "accepted" ? "accepted" : d.reason,
    via: d.outcome === "accepted" ? d.via : null,
  };
}
