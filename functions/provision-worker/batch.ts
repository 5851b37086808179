import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from '../../shared/logger';
import { provisionFromMessage } from '../../shared/provisioning/provision-from-message';
import type { WorkerDeps } from '../../shared/provisioning/provision-from-message';
import { processSqsBatch } from '../../shared/sqs-batch';

/**
 * The worker's batch handling: one saga run per record. A record fails by throwing; only those
 * come back in batchItemFailures and return to the queue.
 */
export function provisioningBatchHandler(deps: WorkerDeps) {
  const processRecord = async (record: SQSRecord): Promise<void> => {
    const outcome = await provisionFromMessage(record.body, new Date(), deps);
    logger.info('provisioning message handled', { messageId: record.messageId, outcome });
  };
  // The batch's records run side by side (as they did under Powertools batch); the batch's state
  // lives in the call, so invocations running side by side (the local poller, tests) cannot mix
  // their results.
  return (event: SQSEvent, _context?: Context): Promise<SQSBatchResponse> =>
    processSqsBatch(event, processRecord, { inParallel: true });
}
