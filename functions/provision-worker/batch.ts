import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from '../../shared/logger';
import { provisionFromMessage } from '../../shared/provisioning/provision-from-message';
import type { ProvisioningDeps } from '../../shared/provisioning/provision-key';

/**
 * The worker's batch handling: one saga run per record. A record fails by throwing; only those
 * come back in batchItemFailures and return to the queue.
 */
export function provisioningBatchHandler(deps: ProvisioningDeps) {
  const processRecord = async (record: SQSRecord): Promise<void> => {
    const outcome = await provisionFromMessage(record.body, new Date(), deps);
    logger.info('provisioning message handled', { messageId: record.messageId, outcome });
  };
  return (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    // A processor keeps the state of one batch: one per invocation, so that invocations running
    // side by side (the local poller, tests) cannot mix their results. A batch that fails whole is
    // reported like any other, record by record.
    processPartialResponse(event, processRecord, new BatchProcessor(EventType.SQS), {
      context,
      throwOnFullBatchFailure: false,
    });
}
