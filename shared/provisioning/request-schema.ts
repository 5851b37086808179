import { customerIdSchema, EMAIL_PATTERN, registrationIdSchema, tierSchema } from '../core/schemas';
import { boolean, object, optional, refine, text, validate } from '../validation';

/*
 * The registration request's own patterns; the identifiers' are shared (core/schemas.ts). Like
 * those, NAME_PATTERN is also openapi.yaml's, written for ECMAScript and Python's `re` alike.
 */

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

/**
 * A registration request. With `tiers`, the tier must be one of them (the HTTP and import paths
 * refuse an unknown tier up front); without, any tier name passes and the saga decides, so a
 * queued message whose tier has since been removed is recorded as failed rather than dropped.
 */
export function registrationRequestSchema(tiers?: readonly string[]) {
  return object(
    {
      customerId: customerIdSchema,
      email: text({ max: 254, pattern: new RegExp(EMAIL_PATTERN, 'u'), patternMessage: 'must be one plain email address' }),
      tier: tiers ? tierSchema(tiers) : text({ min: 1, max: 32 }),
      name: optional(
        refine(
          text({
            pattern: new RegExp(NAME_PATTERN, 'u'),
            patternMessage: 'must be 1 to 100 characters, without control, bidirectional or invisible formatting characters',
            trim: true,
          }),
          (name) => !LONE_SURROGATE.test(name),
          'must be well-formed Unicode (no lone surrogates)',
        ),
      ),
      reactivate: optional(boolean()),
    },
    { strict: true },
  );
}

/**
 * The body of a message on the provisioning queue. Pure (built once, no effect): a bundle that
 * never reads a message (register) drops it.
 */
export const provisioningMessageSchema = /* @__PURE__ */ object(
  { registrationId: registrationIdSchema, request: /* @__PURE__ */ registrationRequestSchema() },
  { strict: true },
);

/**
 * The registration's id: the caller's idempotency key, or without one the customer id, so each
 * customer is registered once (the HTTP route, the import and the CLI all name it this way).
 */
export function registrationIdFor(customerId: string, idempotencyKey: string | undefined, where: string): string {
  return idempotencyKey === undefined ? customerId : validate(registrationIdSchema, idempotencyKey, where);
}
