// Argument parsing shared by the commands (node:util parseArgs, turned into UsageErrors). The option
// table is the one --help is generated from (help.ts): each entry may carry its description.

import { parseArgs } from "node:util";
import { UsageError } from "../../core/errors.js";
import type { OptionTable } from "./help.js";

export type Options = OptionTable;

export function parse<T extends Options>(command: string, argv: string[], options: T) {
  try {
    // parseArgs reads type/short/multiple and ignores the help fields.
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, "");
    throw new UsageError(`${message}; see otpgate ${command} --help`);
  }
}

export function parseOctal(flag: string, value: string): number {
  if (!/^0?[0-7]{1,4}$/.test(value) || Number.parseInt(value, 8) === 0) {
    throw new UsageError(`${flag} must be a non-zero octal permission such as 0600, not "${value}"`);
  }
  return Number.parseInt(value, 8);
}
