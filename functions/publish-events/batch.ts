import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { RecordedEvent } from '../../shared/core/events';
import { type PublishDeps, publishEvents } from '../../shared/events/publish-events';
import { logger } from '../../shared/logger';
import { processStreamBatch, type StreamProgress } from '../../shared/stream-batch';

/** The outbox event a stream record brings, or undefined for any other record (shared/aws/outbox-stream.ts). */
export type OutboxReader = (record: DynamoDBRecord) => RecordedEvent | undefined;

/**
 * The table stream's batches: the outbox events among the records, published in stream order.
 * Where publishing stops (or a record is no readable outbox item), that record and every later
 * one are reported, so the stream delivers them again in the same order; nothing after a failed
 * event is published before it. Records that bring no event are done at once.
 */
export function publishEventsBatchHandler(deps: PublishDeps & { eventOf: OutboxReader }) {
  const processRecords = async (records: readonly DynamoDBRecord[]): Promise<StreamProgress> => {
    const events: RecordedEvent[] = [];
    /** The record of each event, by the event's index. */
    const recordOf: number[] = [];
    let unreadable: StreamProgress['failed'];
    for (const [index, record] of records.entries()) {
      try {
        const recorded = deps.eventOf(record);
        if (!recorded) continue;
        events.push(recorded);
        recordOf.push(index);
      } catch (error) {
        // Nothing after it is published before it.
        unreadable = { index, error };
        break;
      }
    }
    const outcome = await publishEvents(events, deps);
    logger.info('outbox events published', { records: records.length, events: events.length, published: outcome.published });
    if (outcome.failure) return { failed: { index: recordOf[outcome.failure.index] ?? 0, error: outcome.failure.error } };
    return unreadable ? { failed: unreadable } : {};
  };
  return (event: DynamoDBStreamEvent, _context?: Context): Promise<DynamoDBBatchResponse> =>
    processStreamBatch(event, processRecords);
}
