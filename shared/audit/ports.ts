import type { RecordedEvent } from '../core/events';

/** One page of a customer's audit trail, newest first. */
export interface EventPage {
  events: RecordedEvent[];
  /** The sequence number to read on from (exclusive) when older events remain; absent on the last page. */
  next?: number | undefined;
}

/**
 * A customer's lifecycle events as the outbox kept them (DESIGN §9): the audit trail, read back
 * newest first.
 */
export interface EventHistory {
  /**
   * Up to `limit` events, newest first; with `before`, only events numbered below it. `next` is
   * set only when at least one older event exists.
   */
  page(customerId: string, request: { limit: number; before?: number | undefined }): Promise<EventPage>;
  /**
   * Whether the customer has a history to show: a profile that has ever recorded an event or is
   * registered (a profile reserved by a first registration still in flight is not one yet).
   */
  knows(customerId: string): Promise<boolean>;
}
