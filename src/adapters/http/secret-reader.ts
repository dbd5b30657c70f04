// What the gateway's session checks compare: a mark of the user's secret as the decision service
// reports it now (AccountReply's fingerprint: otpgate server's keyed digest, or the in-process one),
// which the session service keys again with the gateway's own keys. The gateway never reads the
// state file itself. null: no such user, not enrolled, or a state file a login would refuse (the
// session ends); throws when it cannot tell (the service is unavailable, a lookup is busy or timed
// out), so the session is checked again later and never ended on it.

import type { DecisionService } from "../../ports/decision-service.js";

export function createSecretReader(decisions: Pick<DecisionService, "account">): (user: string) => Promise<string | null> {
  return async (user) => {
    const reply = await decisions.account({ user });
    return reply.account === "enrolled" ? reply.fingerprint : null;
  };
}
