import { ValidationError } from './errors';
import * as z from './schema';

/**
 * Validates with a zod schema; the first issue becomes a ValidationError naming its field, so the
 * caller learns which input to fix. `where` prefixes the field for headers and path parameters.
 */
export function validate<S extends z.core.$ZodType>(schema: S, value: unknown, where = ''): z.output<S> {
  const result = z.safeParse(schema, value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new ValidationError(where || 'body', 'is invalid');
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
  const field = [where, ...path.map(String)].filter(Boolean).join('.') || 'body';
  const message =
    issue.code === 'unrecognized_keys' ? `unknown field "${issue.keys[0] ?? ''}"` : `${field}: ${issue.message}`;
  throw new ValidationError(field, message);
}
