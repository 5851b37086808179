import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from './logger';

/**
 * An SQS batch with a partial batch response (the trigger's ReportBatchItemFailures): a record
 * fails by throwing, and only the failed ones come back in batchItemFailures and return to the
 * queue; a batch that fails whole is reported like any other, record by record. Each failure is
 * logged with its record's messageId. Every record is worked, whatever the others did: all at once
 * (`inParallel`), or one after the other.
 */
export async function processSqsBatch(
  event: SQSEvent,
  processRecord: (record: SQSRecord) => Promise<void>,
  { inParallel }: { inParallel: boolean },
): Promise<SQSBatchResponse> {
  const failures: SQSBatchItemFailure[] = [];
  const work = async (record: SQSRecord) => {
    try {
      await processRecord(record);
    } catch (error) {
      logger.warn('queue record failed; it returns to the queue', { messageId: record.messageId, error });
      failures.push({ itemIdentifier: record.messageId });
    }
  };
  if (inParallel) await Promise.all(event.Records.map(work));
  else for (const record of event.Records) await work(record);
  return { batchItemFailures: failures };
}
