// What the gateway's page handlers (login, enrollment, logout) are given: the app's services and
// the helpers every page gets right the same way. Built once by createGatewayApp from GatewayDeps.

import type { Regulator } from "../../core/web/index.js";
import type { Clock, Random } from "../../ports/index.js";
import type { GatewayConfig } from "./gateway-config.js";
import type { GatewayLog, GatewayRequest } from "./gateway-types.js";
import type { PageKit } from "./page-kit.js";
import type { Sessions } from "./sessions.js";
import type { DecisionService } from "../../ports/decision-service.js";

export interface GatewayMetrics {
  logins_ok: number;
  logins_failed: number;
  bans: number;
  upstream_errors: number;
  forward_auth_allowed: number;
  forward_auth_denied: number;
  enrollments: number;
  /** Times the gateway closed idle keep-alive connections because it was near limits.max_connections. */
  idle_connection_sweeps: number;
}

export const newMetrics = (): GatewayMetrics => ({
  logins_ok: 0,
  logins_failed: 0,
  bans: 0,
  upstream_errors: 0,
  forward_auth_allowed: 0,
  forward_auth_denied: 0,
  enrollments: 0,
  idle_connection_sweeps: 0,
});

export interface HandlerContext {
  readonly config: GatewayConfig;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: GatewayLog;
  readonly kit: PageKit;
  readonly sessions: Sessions;
  readonly regulator: Regulator;
  /** The login decision, accounts and enrollment writes (otpgate server, or in-process). */
  readonly decisions: DecisionService;
  sleep(ms: number): Promise<void>;
  readonly metrics: GatewayMetrics;
  /** The client's address as the gateway believes it (the peer, or X-Forwarded-For from a trusted proxy). */
  clientAddress(req: GatewayRequest): string;
  /** Set-Cookie value carrying a session cookie value (empty value + Max-Age=0 clears it). */
  sessionCookie(value: string | null): string;
}
