import * as z from 'zod';
import { validate } from '../validation';

/*
 * The patterns below are also the patterns of openapi.yaml (test/integration/api-contract.test.ts
 * checks they are the same strings), so the document says exactly what the service accepts. They
 * are written for both ECMAScript (`u` flag) and Python's `re`, which schemathesis generates from:
 * explicit ranges, no `\d` (any Unicode digit in Python) and no `\p{...}` (unknown to Python).
 */

/** Ids go into DynamoDB keys, API key tags and URLs: a conservative alphabet fits all three. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]*$';

/**
 * One plain address (zod's email rule, pinned here): no spaces, CR/LF, quotes, commas or angle
 * brackets, so an address can never carry a display name, a second recipient or a header.
 */
export const EMAIL_PATTERN =
  "^(?:[A-Za-z0-9_'+\\-]+\\.)*[A-Za-z0-9_'+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$";

/** What String.prototype.trim() removes (ECMAScript WhiteSpace and LineTerminator). */
const TRIMMED = '\\u0009-\\u000D\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF';
/**
 * Never inside a name: C0, DEL and C1 controls, line and paragraph separators, bidirectional
 * controls (which can make a greeting read as something else), zero-width space, word joiner and
 * invisible operators, byte order mark. ZWJ and ZWNJ stay: scripts need them. Lone surrogates are
 * refused separately (LONE_SURROGATE): schemathesis' regex engine cannot hold them in a pattern.
 */
const FORBIDDEN = '\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u206F\\uFEFF';
/** Neither white space nor forbidden: what a name starts and ends with once trimmed. */
const EDGE =
  '\\u0000-\\u0020\\u007F-\\u00A0\\u061C\\u1680\\u2000-\\u200B\\u200E\\u200F\\u2028-\\u202F\\u205F-\\u206F\\u3000\\uFEFF';

/**
 * A name as sent: surrounding white space (dropped), then 1-100 characters (code points) that start
 * and end with a visible character and contain nothing FORBIDDEN. One pattern for the whole value,
 * rather than trim-then-check, so that the document can state it.
 */
export const NAME_PATTERN = `^[${TRIMMED}]*[^${EDGE}](?:[^${FORBIDDEN}]{0,98}[^${EDGE}])?[${TRIMMED}]*$`;

/**
 * A lone surrogate (JSON allows `"\ud800"`) is no character: DynamoDB and SES need well-formed
 * UTF-8, so it would fail deep inside the saga instead of here. With the `u` flag only a lone
 * surrogate matches.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const id = (max: number) =>
  z.string().min(1).max(max).regex(new RegExp(ID_PATTERN, 'u'), 'use letters, digits and . _ : - only');

export const customerIdSchema = id(64);
export const registrationIdSchema = id(128);

/**
 * A registration request. With `tiers`, the tier must be one of them (the HTTP and import paths
 * refuse an unknown tier up front); without, any tier name passes and the saga decides, so a
 * queued message whose tier has since been removed is recorded as failed rather than dropped.
 */
export function registrationRequestSchema(tiers?: readonly string[]) {
  return z.strictObject({
    customerId: customerIdSchema,
    email: z.string().max(254).regex(new RegExp(EMAIL_PATTERN, 'u'), 'must be one plain email address'),
    tier: tiers ? tierSchema(tiers) : z.string().min(1).max(32),
    name: z
      .string()
      .regex(
        new RegExp(NAME_PATTERN, 'u'),
        'must be 1-100 characters without control, bidirectional or invisible formatting characters',
      )
      .refine((name) => !LONE_SURROGATE.test(name), 'must be well-formed Unicode (no lone surrogates)')
      .trim()
      .optional(),
    reactivate: z.boolean().optional(),
  });
}

/** The body of a message on the provisioning queue. */
export const provisioningMessageSchema = z.strictObject({
  registrationId: registrationIdSchema,
  request: registrationRequestSchema(),
});

/** One of the configured tiers, with a message that lists them. */
export function tierSchema(tiers: readonly string[]) {
  return z.enum(tiers as [string, ...string[]], { error: `must be one of: ${tiers.join(', ')}` });
}

/**
 * The registration's id: the caller's idempotency key, or without one the customer id, so each
 * customer is registered once (the HTTP route, the import and the CLI all name it this way).
 */
export function registrationIdFor(customerId: string, idempotencyKey: string | undefined, where: string): string {
  return idempotencyKey === undefined ? customerId : validate(registrationIdSchema, idempotencyKey, where);
}
