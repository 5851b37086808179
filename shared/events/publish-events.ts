import type { RecordedEvent } from '../core/events';
import { holdsKeyValue } from '../core/key-value';
import { logger } from '../logger';
import { countMetric } from '../metrics';

/** An event the bus did not take, and why (the bus's own error code and message). */
export interface RefusedEvent {
  eventId: string;
  code: string;
  message: string;
}

/** Where lifecycle events go (DESIGN §9): EventBridge, through shared/aws/eventbridge-bus.ts. */
export interface EventBus {
  /** The most events one publish() takes (PutEvents: 10). */
  readonly maxEventsPerCall: number;
  /**
   * Publishes the events, in one call. Resolves with the events the bus refused; it took the others.
   * @throws when the call as a whole failed: any of the events may or may not have been taken.
   */
  publish(events: readonly RecordedEvent[]): Promise<{ refused: readonly RefusedEvent[] }>;
}

export interface PublishDeps {
  bus: EventBus;
  settings?: PublishSettings;
  /** Waits between two attempts; tests pass one that does not. */
  pause?: (ms: number) => Promise<void>;
}

export interface PublishSettings {
  /** Attempts at the events the bus refused, the first included. */
  attempts: number;
  /** The wait before the second attempt, doubled before each further one. */
  backoffMs: number;
}

/** Three tries of refused events (throttling, an internal failure) before the stream retries them. */
export const DEFAULT_PUBLISH_SETTINGS: PublishSettings = { attempts: 3, backoffMs: 100 };

export interface PublishOutcome {
  /** How many events, from the first, are published: all of them unless `failure` says otherwise. */
  published: number;
  /**
   * The first event that is not (its index among the events given) and why. Events after it may
   * have been published too; they are published again with it (at least once: consumers
   * de-duplicate on eventId).
   */
  failure?: { index: number; error: Error };
}

/** The bus kept refusing an event, or the call failed. */
export class EventNotPublishedError extends Error {
  override readonly name = 'EventNotPublishedError';
}

/** An event whose detail holds something of a key value's shape: it is never published. */
export class UnsafeEventError extends Error {
  override readonly name = 'UnsafeEventError';
}

/** The fields every published event's detail starts with; an event's own detail cannot replace them. */
const ENVELOPE = ['eventId', 'customerId', 'sequence', 'time', 'correlationId'] as const;

/**
 * An event's `detail` as consumers read it on the bus: the envelope (eventId, customerId,
 * sequence, time, correlationId), then the event's own detail as the outbox holds it, nothing else.
 */
export function publishedDetail(recorded: RecordedEvent): Record<string, unknown> {
  const detail: Record<string, unknown> = {};
  for (const field of ENVELOPE) detail[field] = recorded[field];
  for (const [field, value] of Object.entries(recorded.detail)) {
    if (!Object.hasOwn(detail, field) && value !== undefined) detail[field] = value;
  }
  return detail;
}

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Publishes recorded lifecycle events to the bus, in the order given (the outbox's, which is each
 * customer's sequence order), as many per call as the bus takes.
 *
 * 1. Stops before the first event whose detail holds a key value's shape: the outbox never writes
 *    one, so it is a defect, and the event must not leave (it fails, and stays in the table).
 * 2. Publishes the events before it in calls of `bus.maxEventsPerCall`, one call after another.
 * 3. Publishes again what the bus refused (FailedEntryCount), up to `settings.attempts` tries with
 *    a doubling wait; a call that throws is not repeated (the SDK already retried it).
 * 4. Stops at the first call that still leaves an event unpublished: nothing after that event is
 *    published, so the caller can resume from it with no later event of a customer overtaking it.
 *
 * Never throws: what is not published is `failure`. Counts EventsPublished (each event the bus
 * took) and EventPublishFailures (each event it still refused, or that failed with its call).
 */
export async function publishEvents(events: readonly RecordedEvent[], deps: PublishDeps): Promise<PublishOutcome> {
  const { bus, settings = DEFAULT_PUBLISH_SETTINGS, pause = wait } = deps;
  const unsafe = events.findIndex((recorded) => holdsKeyValue(JSON.stringify(publishedDetail(recorded))));
  const safe = unsafe === -1 ? events.length : unsafe;

  for (let start = 0; start < safe; start += bus.maxEventsPerCall) {
    const call = events.slice(start, Math.min(start + bus.maxEventsPerCall, safe));
    const left = await publishCall(call, bus, settings, pause);
    if (left) {
      countMetric('EventPublishFailures', left.events.length);
      const index = start + call.indexOf(left.events[0]!);
      return { published: index, failure: { index, error: left.error } };
    }
  }
  if (safe < events.length) {
    countMetric('EventPublishFailures');
    const { eventId, customerId, sequence } = events[safe]!;
    logger.error('event not published: its detail holds a key value', { eventId, customerId, sequence });
    return { published: safe, failure: { index: safe, error: new UnsafeEventError(`event ${eventId} holds a key value in its detail`) } };
  }
  return { published: events.length };
}

/** One call's events, published with retries; what is still left (in the given order), or nothing. */
async function publishCall(
  events: readonly RecordedEvent[],
  bus: EventBus,
  settings: PublishSettings,
  pause: (ms: number) => Promise<void>,
): Promise<{ events: RecordedEvent[]; error: Error } | undefined> {
  let left = [...events];
  for (let attempt = 1; ; attempt++) {
    let refused: readonly RefusedEvent[];
    try {
      ({ refused } = await bus.publish(left));
    } catch (error) {
      return { events: left, error: new EventNotPublishedError('the event bus call failed', { cause: error }) };
    }
    const refusedIds = new Set(refused.map((entry) => entry.eventId));
    const taken = left.filter((recorded) => !refusedIds.has(recorded.eventId)).length;
    if (taken > 0) countMetric('EventsPublished', taken);
    left = left.filter((recorded) => refusedIds.has(recorded.eventId));
    if (left.length === 0) return undefined;
    // Ids, codes and the bus's messages: an event's detail is never logged.
    logger.warn('event bus refused events', { attempt, refused });
    if (attempt >= settings.attempts) {
      const [first] = refused.filter((entry) => entry.eventId === left[0]!.eventId);
      return {
        events: left,
        error: new EventNotPublishedError(`the event bus refused event ${left[0]!.eventId}: ${first?.code ?? 'unknown'} ${first?.message ?? ''}`.trim()),
      };
    }
    await pause(settings.backoffMs * 2 ** (attempt - 1));
  }
}
