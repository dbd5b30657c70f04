// The fleet store's own errors, all FleetUnavailable (ports/fleet.ts): a caller that refuses the
// login on FleetUnavailable refuses it on these too.

import { FleetUnavailable } from "../../ports/fleet.js";

/** A row is encrypted under a key id this host's key file does not have (a rotation not copied here yet). */
export class FleetKeyMissing extends FleetUnavailable {
  override name = "FleetKeyMissing";
  constructor(
    readonly keyId: string,
    keyFile: string,
  ) {
    super(
      `the account is stored under the key id ${keyId}, which ${keyFile} does not have: copy the current key file from the host that rotated the keys (otpgate db rotate-key --add) to this host; nothing was changed`,
    );
  }
}

/** A stored row cannot be decrypted or is malformed (tampered with, or a secret copied onto another user). */
export class FleetRowInvalid extends FleetUnavailable {
  override name = "FleetRowInvalid";
}
