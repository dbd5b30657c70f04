// Where otpgate server reads invitations (invites_dir), as root. An invitation with replace:true
// lets whoever holds its link enroll a new secret for its user, so the directory and every
// directory above it must be root's alone: whoever owns or can write one of them (a gateway user
// owning the state directory, say) can rename the directory away and put another in its place, a
// link to any root-owned directory of invitations included. Checked at start and before each
// invitation request (the layout can change while the server runs).

import { ConfigError } from "../../core/errors.js";
import { stateLocationProblems } from "../../platform/trusted-path.js";

/** Why `dir` cannot hold invitations the server trusts, with the fix; null when it is root's alone up to /. */
export function invitesDirProblem(dir: string): string | null {
  const problem = stateLocationProblems(dir, { owners: [0] })[0];
  if (!problem) return null;
  return `invites_dir ${dir}: ${problem.path} is ${problem.reason}, so someone other than root could put invitations there that enroll a secret for any user; ${problem.fix} (otpgate server reads invitations as root and refuses them until then)`;
}

/** Throws ConfigError with invitesDirProblem's message. */
export function checkInvitesDir(dir: string): void {
  const problem = invitesDirProblem(dir);
  if (problem !== null) throw new ConfigError(problem);
}
