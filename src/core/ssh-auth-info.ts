// What sshd says about the authentication methods a connection has completed. OpenSSH >= 7.7
// exports SSH_AUTH_INFO_0 into the PAM environment before it calls pam_authenticate (auth-pam.c,
// expose_authinfo), and pam_exec hands the PAM environment to its child. The value is sshd's
// session_info: one line per COMPLETED method, "METHOD[-SUBMETHOD] [DETAIL]\n", e.g.
// "publickey ssh-ed25519 AAAAC3Nz...\n". A key that was offered but not accepted is not listed.

/** One `publickey KEYTYPE BASE64[ more]` line, as sshd records an accepted key or certificate. */
const PUBLICKEY_LINE = /^publickey [A-Za-z0-9@._+-]+ [A-Za-z0-9+/]+={0,3}(?: |$)/;

/**
 * True when sshd reports a completed "publickey" method. Unset, empty, "password",
 * "keyboard-interactive" or anything not shaped like sshd's publickey record is false.
 */
export function hasCompletedPublickey(authInfo: string | undefined): boolean {
  if (authInfo === undefined || authInfo === "") return false;
  for (const line of authInfo.split("\n")) if (PUBLICKEY_LINE.test(line)) return true;
  return false;
}
