import { z } from 'zod';

/** Ids go into DynamoDB keys, API key tags and URLs: a conservative alphabet fits all three. */
const id = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'use letters, digits and . _ : - only');

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
    // z.email() refuses spaces, CR/LF, quotes, commas and angle brackets, so an address can
    // never carry a second recipient or a header into the email.
    email: z.email().max(254),
    tier: tiers
      ? z.enum(tiers as [string, ...string[]], { error: `must be one of: ${tiers.join(', ')}` })
      : z.string().min(1).max(32),
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[^\p{C}]*$/u, 'must not contain control characters')
      .optional(),
    reactivate: z.boolean().optional(),
  });
}

/** The body of a message on the provisioning queue. */
export const provisioningMessageSchema = z.strictObject({
  registrationId: registrationIdSchema,
  request: registrationRequestSchema(),
});
