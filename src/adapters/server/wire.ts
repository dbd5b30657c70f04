// Strict readers of the decision service's request bodies (src/ports/decision-service.ts): unknown
// fields, wrong types, over-long strings and names that fail the user-name rule are refused with a
// message that names the field, never the value (it may be a code or a token).

import { z } from "zod";
import { userNameProblem } from "../../core/user-name.js";
import type { AccountRequest, DecideRequest, EnrollRequest, InviteRequest } from "../../ports/decision-service.js";

const userName = z
  .string()
  .max(256)
  .refine((name) => userNameProblem(name) === null, { message: "not a valid user name" });
const code = z.string().regex(/^[0-9]{6,8}$/, { message: "must be 6-8 digits" });
const token = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, { message: "must be an invitation token" });

const decide = z.strictObject({
  user: userName,
  code,
  service: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, { message: "must be 1-64 letters, digits or ._:-" }),
  clientAddress: z
    .string()
    .regex(/^[0-9A-Fa-f.:]{1,64}$/, { message: "must be an IP address" })
    .optional(),
  rateLimit: z.enum(["apply", "ignore"]).optional(),
  device: z.boolean().optional(),
});
const account = z.strictObject({ user: userName });
const invite = z.strictObject({ token });
const enroll = z.strictObject({
  token,
  // Base32 of 10-64 bytes, as otpgate enroll writes it (20 bytes: 32 characters).
  secret: z.string().regex(/^[A-Z2-7]{16,103}$/, { message: "must be 16-103 base32 characters (A-Z, 2-7)" }),
  scratchCodes: z
    .array(z.number().int().min(10_000_000).max(99_999_999))
    .max(10)
    .refine((codes) => new Set(codes).size === codes.length, { message: "must not repeat a code" }),
});

export class BadRequest extends Error {
  override name = "BadRequest";
}

function reader<T>(schema: z.ZodType<T>): (body: unknown) => T {
  return (body) => {
    const r = schema.safeParse(body);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join(".") : "body";
    // zod's message for an unknown key names the key only; for others we give our own words.
    throw new BadRequest(`${where}: ${issue?.message ?? "invalid"}`);
  };
}

export const readDecide: (body: unknown) => DecideRequest = reader(decide);
export const readAccount: (body: unknown) => AccountRequest = reader(account);
export const readInvite: (body: unknown) => InviteRequest = reader(invite);
export const readEnroll: (body: unknown) => EnrollRequest = reader(enroll);
