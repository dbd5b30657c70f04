// An account lookup that could not tell (NSS busy, timed out, failed): not "no such user". Thrown by
// the in-process decision service's account(); the sign-in answers it exactly like an unknown user
// (counted against the address only) and a session check asks again later instead of ending.

import { DecisionServiceUnavailable } from "../../ports/decision-service.js";

export class LookupUnavailable extends DecisionServiceUnavailable {
  override name = "LookupUnavailable";
  constructor(
    readonly reason: "timeout" | "busy" | "error",
    detail?: string,
  ) {
    super(`the account lookup cannot tell now (${reason}${detail ? `: ${detail}` : ""}); checking again later`);
  }
}
