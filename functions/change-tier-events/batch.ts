import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type TierChangeDeps, changeTier } from '../../shared/customers/change-tier';
import { isPermanent, ValidationError } from '../../shared/errors';
import { logger } from '../../shared/logger';
import { processSqsBatch } from '../../shared/sqs-batch';
import { customerIdSchema } from '../../shared/core/schemas';
import { isoDateTime, object, optional, text, validate } from '../../shared/validation';

/** The billing system's "plan changed" event, delivered by EventBridge to the tier-change queue. */
const planChangedSchema = object({
  id: text({ min: 1 }),
  /** When the billing system's change happened (EventBridge's envelope time, to the second). */
  time: optional(isoDateTime()),
  detail: object({
    customerId: customerIdSchema,
    tier: text({ min: 1 }),
    /** The billing system's own time of the change, when it sends one: finer than `time`. */
    occurredAt: optional(isoDateTime()),
  }),
});

/**
 * One tier change per record. A busy customer or a failed move throws, so the record returns to
 * the queue and is retried; an event that can never apply (malformed, unknown tier or customer,
 * revoked) is logged and acknowledged.
 */
export function tierChangeBatchHandler(deps: TierChangeDeps) {
  const processRecord = async (record: SQSRecord): Promise<void> => {
    try {
      const event = validate(planChangedSchema, parseBody(record.body));
      const occurred = event.detail.occurredAt ?? event.time;
      const result = await changeTier(
        {
          customerId: event.detail.customerId,
          tier: event.detail.tier,
          requestId: event.id,
          now: new Date(),
          // The newest event wins: one older than the last applied is acknowledged and dropped.
          eventAt: occurred ? new Date(occurred).toISOString() : undefined,
        },
        deps,
      );
      logger.info('plan changed event applied', { messageId: record.messageId, changed: result.changed, stale: result.stale });
    } catch (error) {
      if (isPermanent(error)) {
        logger.warn('plan changed event rejected', { messageId: record.messageId, error });
        return;
      }
      throw error;
    }
  };
  // One record at a time: side by side, every record of the batch would take its customer's
  // lease at once and hold it while waiting for the container's share of the management budget.
  return (event: SQSEvent, _context?: Context): Promise<SQSBatchResponse> =>
    processSqsBatch(event, processRecord, { inParallel: false });
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new ValidationError('body', 'the event is not valid JSON');
  }
}
