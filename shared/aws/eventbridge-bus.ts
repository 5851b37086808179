import { type EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { RecordedEvent } from '../core/events';
import { type EventBus, publishedDetail, type RefusedEvent } from '../events/publish-events';

/** PutEvents takes at most 10 entries per call. */
export const PUT_EVENTS_LIMIT = 10;

export interface EventBridgeBusDeps {
  client: EventBridgeClient;
  /** The bus's name or ARN (EVENT_BUS_NAME). */
  busName: string;
  /** Every event's `source` (EVENT_SOURCE): the publisher's role may put events with this one only. */
  source: string;
}

/** The lifecycle events' bus over EventBridge's PutEvents. */
export class EventBridgeBus implements EventBus {
  readonly maxEventsPerCall = PUT_EVENTS_LIMIT;
  readonly #deps: EventBridgeBusDeps;

  constructor(deps: EventBridgeBusDeps) {
    this.#deps = deps;
  }

  /**
   * One PutEvents call. EventBridge answers 200 even when it refused entries: FailedEntryCount
   * says how many, and each refused entry, at its position in the request, carries an ErrorCode.
   * @throws RangeError for more than PUT_EVENTS_LIMIT events; the SDK's errors for a failed call
   */
  async publish(events: readonly RecordedEvent[]): Promise<{ refused: readonly RefusedEvent[] }> {
    if (events.length > PUT_EVENTS_LIMIT) throw new RangeError(`PutEvents takes at most ${PUT_EVENTS_LIMIT} events, not ${events.length}`);
    if (events.length === 0) return { refused: [] };
    const response = await this.#deps.client.send(
      new PutEventsCommand({ Entries: events.map((recorded) => putEventsEntry(recorded, this.#deps)) }),
    );
    if (!response.FailedEntryCount) return { refused: [] };
    const answers = response.Entries ?? [];
    return {
      refused: events.flatMap((recorded, index) => {
        const answer = answers[index];
        // An entry the answer does not account for may not have been taken: publish it again.
        if (answer?.EventId && !answer.ErrorCode) return [];
        return [{ eventId: recorded.eventId, code: answer?.ErrorCode ?? 'Unanswered', message: answer?.ErrorMessage ?? '' }];
      }),
    };
  }
}

/**
 * A recorded event as a PutEvents entry: detail-type its type, time its commit time, detail the
 * envelope and its own detail (publishedDetail), no resources.
 */
export function putEventsEntry(recorded: RecordedEvent, { busName, source }: Pick<EventBridgeBusDeps, 'busName' | 'source'>): PutEventsRequestEntry {
  return {
    Source: source,
    DetailType: recorded.type,
    Detail: JSON.stringify(publishedDetail(recorded)),
    EventBusName: busName,
    Time: new Date(recorded.time),
  };
}
