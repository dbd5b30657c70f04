// The error an app request is aborted with when its client went away: not the app's failure, so
// it is neither logged nor counted as an upstream error (app-request-limits.ts releasedWhenSent).

export class ClientGone extends Error {
  override readonly name = "ClientGone";
  constructor() {
    super("the client went away before the app's answer was complete");
  }
}

export const isClientGone = (err: unknown): boolean => (err as { name?: unknown } | null)?.name === "ClientGone";
