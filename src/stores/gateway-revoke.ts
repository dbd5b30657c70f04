// Ending a user's gateway sessions from outside the gateway (otpgate gateway sessions --revoke,
// otpgate invite --replace): sets the user's "valid after" time in sessions_file; a running gateway
// notices within about a second. Without a keys file no gateway has issued a session yet.

import { readKeyFile } from "../platform/keyring.js";
import { GatewaySessionsFile, type SessionsState } from "./gateway-sessions.js";

export interface GatewayFiles {
  readonly keysFile: string;
  readonly sessionsFile: string;
}

/** "no-keys": the gateway never ran with these files (no session can exist); nothing was written. */
export async function revokeUserSessions(files: GatewayFiles, user: string, now: number): Promise<"revoked" | "no-keys"> {
  const keys = readKeyFile(files.keysFile);
  if (!keys) return "no-keys";
  await new GatewaySessionsFile(files.sessionsFile, keys.lockSecret, keys.sessionsFileCreated ? files.keysFile : null).revokeUser(user, now);
  return "revoked";
}

/** What sessions_file holds (null without a keys file). */
export function storedSessionDecisions(files: GatewayFiles): SessionsState | null {
  const keys = readKeyFile(files.keysFile);
  if (!keys) return null;
  return new GatewaySessionsFile(files.sessionsFile, keys.lockSecret, keys.sessionsFileCreated ? files.keysFile : null).read().state;
}

/** For --check-config and the start: the keys and sessions files can be used (throws ConfigError with the fix otherwise). */
export function sessionFilesNotes(files: GatewayFiles, parts: { readonly sessionsFile?: boolean } = {}): string[] {
  const keys = readKeyFile(files.keysFile);
  if (!keys) return []; // created at the first start
  const newest = keys.keys[keys.keys.length - 1]!;
  const keysNote = `${keys.keys.length} key(s) in ${files.keysFile}, id ${newest.kid} seals${keys.legacy ? " (the 64-byte file of earlier versions: the first rotation converts it)" : ""}`;
  if (parts.sessionsFile === false) return [keysNote];
  const state = new GatewaySessionsFile(files.sessionsFile, keys.lockSecret, keys.sessionsFileCreated ? files.keysFile : null).read().state;
  return [keysNote, `${state.revoked.size} revoked session(s) and ${state.validAfter.size} user(s) logged out everywhere in ${files.sessionsFile}`];
}
