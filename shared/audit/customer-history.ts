import type { RecordedEvent } from '../core/events';
import { NotFoundError } from '../errors';
import { integer, object, optional, type Schema, validate } from '../validation';
import { cursorSchema, encodeCursor } from './history-cursor';
import type { EventHistory } from './ports';

/** Events per page unless the request says otherwise, and the most one page holds. */
export const DEFAULT_HISTORY_LIMIT = 20;
export const MAX_HISTORY_LIMIT = 100;

export interface HistoryDeps {
  history: EventHistory;
}

/** A page as a request asks for it: `limit` as a number, or as the digits of a query string. */
export interface HistoryQuery {
  limit?: number | string | undefined;
  cursor?: string | undefined;
}

/** One page of the audit trail: each event as recorded and published, never a key value. */
export interface CustomerHistory {
  customerId: string;
  /** Newest first. */
  events: RecordedEvent[];
  /** Present when older events remain: pass it as `cursor` for the next page. */
  nextCursor?: string | undefined;
}

const pageLimit = integer({ min: 1, max: MAX_HISTORY_LIMIT });

/** "limit must be a whole number from 1 to 100", whether it came as 0, 101, 2.5 or "ten". */
const limitSchema: Schema<number> = (value, field) =>
  pageLimit(typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value, field);

export const historyQuerySchema = object({ limit: optional(limitSchema), cursor: optional(cursorSchema) });

/**
 * One page of the customer's lifecycle events (DESIGN §9), newest first: what happened to the
 * customer and its keys, in the order it committed.
 *
 * Steps: validate `limit` (1 to MAX_HISTORY_LIMIT, default DEFAULT_HISTORY_LIMIT) and `cursor`
 * before any read; read the page; only when it is empty, ask whether the customer exists at all
 * (an event is written in the same transaction as its customer's profile, so a page with events
 * needs no second read). `nextCursor` is set only when an older event exists, so the last page
 * has none.
 *
 * @throws ValidationError naming `limit` or `cursor` (one this API did not give out)
 * @throws NotFoundError when there is no such customer (no profile, or one that never registered
 *   and has no event)
 * @throws TransientAwsError when DynamoDB keeps throttling or failing
 */
export async function getCustomerHistory(customerId: string, query: HistoryQuery, deps: HistoryDeps): Promise<CustomerHistory> {
  const { limit = DEFAULT_HISTORY_LIMIT, cursor } = validate(historyQuerySchema, query);
  const page = await deps.history.page(customerId, { limit, before: cursor });
  if (page.events.length === 0 && !(await deps.history.knows(customerId))) {
    throw new NotFoundError(`no customer ${customerId}`);
  }
  const history: CustomerHistory = { customerId, events: page.events };
  if (page.next !== undefined) history.nextCursor = encodeCursor(page.next);
  return history;
}
