import type { RecordedEvent } from '../core/events';

/** What a follower is told besides the events themselves. */
export interface FollowOptions {
  /** Stops the feed: the iteration ends (no error) as soon as it can, an AWS call in flight included. */
  signal: AbortSignal;
  /** Once the feed reads from its start: events committed after this call are seen. */
  onStart?: (() => void) | undefined;
  /**
   * An outbox item that is not a well-formed event (a defect): the feed says so here and goes on,
   * so that one bad item does not stop a follower of every customer.
   */
  onMalformed?: ((reason: string) => void) | undefined;
}

/**
 * Every customer's lifecycle events (DESIGN §9) as they commit: a live view of the outbox,
 * unlike the audit trail (ports.ts's EventHistory), which reads one customer's back. A customer's
 * events come in their order; events of different customers in the order the feed reads them.
 */
export interface EventFeed {
  /** The events committed from the start of the feed on, until `options.signal` aborts. */
  follow(options: FollowOptions): AsyncIterable<RecordedEvent>;
}
