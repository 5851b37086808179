import { refine, type Schema, oneOf, text } from '../validation';

/*
 * The identifiers every route, command and message names: the patterns are also openapi.yaml's
 * (test/integration/api-contract.test.ts checks they are the same strings). They are written for
 * both ECMAScript (`u` flag) and Python's `re`, which schemathesis generates from: explicit ranges,
 * no `\d` (any Unicode digit in Python) and no `\p{...}` (unknown to Python).
 */

/** Ids go into DynamoDB keys, API key tags and URLs: a conservative alphabet fits all three. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]*$';

export { EMAIL_PATTERN } from '../validation';

const ID = new RegExp(ID_PATTERN, 'u');

/**
 * ID_PATTERN, in two sentences: which characters, then how it starts (the only way a value of
 * those characters can still miss the pattern).
 */
const id = (max: number): Schema<string> =>
  refine(
    text({ min: 1, max, pattern: /^[A-Za-z0-9._:-]*$/, patternMessage: 'may contain only letters, digits and . _ : -' }),
    (value) => ID.test(value),
    'must start with a letter or digit',
  );

export const customerIdSchema = id(64);
export const registrationIdSchema = id(128);

/** One of the configured tiers, with a message that lists them. */
export function tierSchema(tiers: readonly string[]): Schema<string> {
  return oneOf(tiers);
}
