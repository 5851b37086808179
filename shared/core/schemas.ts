import * as z from '../schema';

/*
 * The identifiers every route, command and message names: the patterns are also openapi.yaml's
 * (test/integration/api-contract.test.ts checks they are the same strings). They are written for
 * both ECMAScript (`u` flag) and Python's `re`, which schemathesis generates from: explicit ranges,
 * no `\d` (any Unicode digit in Python) and no `\p{...}` (unknown to Python).
 */

/** Ids go into DynamoDB keys, API key tags and URLs: a conservative alphabet fits all three. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]*$';

/**
 * One plain address (zod's email rule, pinned here): no spaces, CR/LF, quotes, commas or angle
 * brackets, so an address can never carry a display name, a second recipient or a header.
 */
export const EMAIL_PATTERN =
  "^(?:[A-Za-z0-9_'+\\-]+\\.)*[A-Za-z0-9_'+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$";

const id = (max: number) =>
  z.string().check(z.minLength(1), z.maxLength(max), z.regex(new RegExp(ID_PATTERN, 'u'), 'use letters, digits and . _ : - only'));

export const customerIdSchema = id(64);
export const registrationIdSchema = id(128);

/** One of the configured tiers, with a message that lists them. */
export function tierSchema(tiers: readonly string[]) {
  return z.enum(tiers as [string, ...string[]], { error: `must be one of: ${tiers.join(', ')}` });
}
