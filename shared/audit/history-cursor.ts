import { fail, type Schema } from '../validation';

/*
 * The audit trail's page cursor: opaque to callers, and read back strictly. It carries the
 * sequence number the next page starts below (DynamoDB's LastEvaluatedKey comes down to that:
 * the partition is the customer, the sort key the number), as base64url of `v1.<sequence>`.
 * The version lets the form change later and still refuse the old one in words.
 */

const FORM = /^v1\.([1-9][0-9]{0,11})$/;
const BASE64URL = /^[A-Za-z0-9_-]{1,32}$/;
const REFUSAL = 'is not a cursor this API gave out: pass a nextCursor unchanged, or leave it out to start from the newest event';

/** The cursor of the page that continues below `before` (a sequence number, 1 or more). */
export function encodeCursor(before: number): string {
  return Buffer.from(`v1.${before}`, 'utf8').toString('base64url');
}

/** The sequence number a cursor continues below; undefined unless it is exactly one `encodeCursor` made. */
export function decodeCursor(cursor: string): number | undefined {
  if (!BASE64URL.test(cursor)) return undefined;
  const match = FORM.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) return undefined;
  const before = Number(match[1]);
  // Base64 has spare bits and Node's decoder ignores them: only the one spelling we write is ours.
  return encodeCursor(before) === cursor ? before : undefined;
}

/** A cursor as a request gives it: the sequence number to continue below. */
export const cursorSchema: Schema<number> = (value, field) => {
  const before = typeof value === 'string' ? decodeCursor(value) : undefined;
  return before ?? fail(field, value === undefined ? 'is required' : REFUSAL);
};
