// PLACEHOLDER until H1's fleet-main.ts lands (merge takes H1's version plus the FLEET_ACCOUNT_COMMANDS line).
import { OtpgateError, type ExitCode } from "../../../core/errors.js";
import type { Output } from "../output.js";
import { FLEET_ACCOUNT_COMMANDS } from "./fleet-accounts.js";

export const FLEET_COMMANDS: Readonly<Record<string, (argv: string[], io: Output) => Promise<ExitCode>>> = {
  ...FLEET_ACCOUNT_COMMANDS,
};

export async function dispatch(name: string, argv: string[], io: Output): Promise<ExitCode> {
  const command = Object.hasOwn(FLEET_COMMANDS, name) ? FLEET_COMMANDS[name] : undefined;
  if (command === undefined) throw new OtpgateError(`otpgate ${name} has no fleet variant in this build`, 2);
  return command(argv, io);
}
