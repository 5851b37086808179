import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { logger } from '../../shared/logger';
import { processStreamBatch } from '../../shared/stream-batch';
import { streamEvent, streamRecord } from '../support/stream-events';

const batch = () => streamEvent(['11', '12', '13', '14'].map((sequence) => streamRecord({ pk: 'p', sk: sequence }, { sequence })));

describe('processStreamBatch', () => {
  it('answers no failure when every record is done', async () => {
    const response = await processStreamBatch(batch(), async () => ({}));

    expect(response).toEqual({ batchItemFailures: [] });
  });

  it('reports the record that failed and every later one, by sequence number: the stream resumes at it', async () => {
    const response = await processStreamBatch(batch(), async () => ({ failed: { index: 1, error: new Error('no') } }));

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: '12' }, { itemIdentifier: '13' }, { itemIdentifier: '14' }]);
  });

  it('reports a batch that throws from its first record instead of throwing', async () => {
    const response = await processStreamBatch(batch(), async () => {
      throw new Error('crashed');
    });

    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(['11', '12', '13', '14']);
  });

  it('logs the failure with the sequence number the stream resumes at, how many records go again, and the error', async () => {
    const warned = vi.spyOn(logger, 'warn');

    await processStreamBatch(batch(), async () => ({ failed: { index: 2, error: new Error('refused') } }));

    expect(warned).toHaveBeenCalledExactlyOnceWith('stream record failed; the stream resumes from it', {
      sequenceNumber: '13',
      recordsAgain: 2,
      error: expect.objectContaining({ message: 'refused' }),
    });
  });

  it('hands the records over in the order the stream delivered them', async () => {
    const seen = vi.fn(async (_records: readonly DynamoDBRecord[]) => ({}));

    await processStreamBatch(batch(), seen);

    expect(seen.mock.calls[0]?.[0].map((record) => record.dynamodb?.SequenceNumber)).toEqual(['11', '12', '13', '14']);
  });
});
