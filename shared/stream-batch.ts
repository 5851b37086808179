import type { DynamoDBBatchItemFailure, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { logger } from './logger';

/** How far a batch got: every record, or up to the first that failed (its index) and why. */
export interface StreamProgress {
  failed?: { index: number; error: unknown };
}

/**
 * A DynamoDB stream batch with a partial batch response (the trigger's ReportBatchItemFailures).
 * A stream is not a queue: Lambda keeps one position per shard and resumes from the lowest
 * sequence number reported, delivering every record after it again, in order. So `processRecords`
 * works the records in order and says where it stopped; that record and every later one are
 * reported (none of them counts as done), and the failure is logged with the record's sequence
 * number. A batch that throws is reported whole rather than thrown, like any other failure. The
 * batch's state lives in the call, so invocations side by side (the local poller) cannot mix.
 */
export async function processStreamBatch(
  event: DynamoDBStreamEvent,
  processRecords: (records: readonly DynamoDBRecord[]) => Promise<StreamProgress>,
): Promise<DynamoDBBatchResponse> {
  const records = event.Records;
  let progress: StreamProgress;
  try {
    progress = await processRecords(records);
  } catch (error) {
    progress = { failed: { index: 0, error } };
  }
  if (!progress.failed || progress.failed.index >= records.length) return { batchItemFailures: [] };
  const { index, error } = progress.failed;
  const failures: DynamoDBBatchItemFailure[] = records
    .slice(index)
    .map((record) => ({ itemIdentifier: record.dynamodb?.SequenceNumber ?? '' }));
  logger.warn('stream record failed; the stream resumes from it', {
    sequenceNumber: failures[0]?.itemIdentifier,
    recordsAgain: failures.length,
    error,
  });
  return { batchItemFailures: failures };
}
