import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { logger } from '../../shared/logger';
import { processSqsBatch } from '../../shared/sqs-batch';
import { sqsEvent, sqsRecord } from '../support/sqs-events';

/** A record handler that fails the records whose body is "fail", and takes a while for "slow" ones. */
function recordHandler() {
  const steps: string[] = [];
  const handle = vi.fn(async (record: SQSRecord) => {
    steps.push(`start ${record.messageId}`);
    if (record.body === 'slow') await new Promise((resolve) => setTimeout(resolve, 20));
    steps.push(`end ${record.messageId}`);
    if (record.body === 'fail') throw new Error(`cannot handle ${record.messageId}`);
  });
  return { handle, steps };
}

describe('processSqsBatch', () => {
  it.each([true, false])('reports the failed records, and only those, by messageId (in parallel: %s)', async (inParallel) => {
    const { handle } = recordHandler();
    const event = sqsEvent([sqsRecord('ok', 'm-1'), sqsRecord('fail', 'm-2'), sqsRecord('ok', 'm-3'), sqsRecord('fail', 'm-4')]);

    const response = await processSqsBatch(event, handle, { inParallel });

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }, { itemIdentifier: 'm-4' }] });
    expect(handle).toHaveBeenCalledTimes(4);
  });

  it('answers an empty list when every record went through', async () => {
    const { handle } = recordHandler();

    const response = await processSqsBatch(sqsEvent([sqsRecord('ok'), sqsRecord('ok')]), handle, { inParallel: true });

    expect(response).toEqual({ batchItemFailures: [] });
  });

  it('reports a batch that fails whole record by record, instead of throwing', async () => {
    const { handle } = recordHandler();
    const event = sqsEvent([sqsRecord('fail', 'm-1'), sqsRecord('fail', 'm-2')]);

    const response = await processSqsBatch(event, handle, { inParallel: false });

    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual(['m-1', 'm-2']);
  });

  it('logs each failure with its messageId and error', async () => {
    const warned = vi.spyOn(logger, 'warn');
    const { handle } = recordHandler();

    await processSqsBatch(sqsEvent([sqsRecord('fail', 'm-1')]), handle, { inParallel: true });

    expect(warned).toHaveBeenCalledExactlyOnceWith('queue record failed; it returns to the queue', {
      messageId: 'm-1',
      error: expect.objectContaining({ message: 'cannot handle m-1' }),
    });
  });

  it('starts every record at once in parallel', async () => {
    const { handle, steps } = recordHandler();
    const event = sqsEvent([sqsRecord('slow', 'm-1'), sqsRecord('ok', 'm-2')]);

    await processSqsBatch(event, handle, { inParallel: true });

    expect(steps).toEqual(['start m-1', 'start m-2', 'end m-2', 'end m-1']);
  });

  it('starts a record only once the one before it is done, and goes on after a failure', async () => {
    const { handle, steps } = recordHandler();
    const event = sqsEvent([sqsRecord('slow', 'm-1'), sqsRecord('fail', 'm-2'), sqsRecord('ok', 'm-3')]);

    const response = await processSqsBatch(event, handle, { inParallel: false });

    expect(steps).toEqual(['start m-1', 'end m-1', 'start m-2', 'end m-2', 'start m-3', 'end m-3']);
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
  });
});
