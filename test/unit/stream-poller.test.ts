import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startStreamPoller, type StreamPoller, type StreamsApi } from '../../infra/local/stream-poller';

/** One shard of a stream, as DynamoDB Streams serves it: an iterator is a position in it. */
function fakeStream(count: number) {
  const records = Array.from({ length: count }, (_, i) => String(101 + i));
  const at = (iterator: string) => Number(iterator.split(':')[1]);
  const api: StreamsApi = {
    shardIds: async () => ['shard-1'],
    shardIterator: async (_arn, _shard, position) => {
      if (!('sequenceNumber' in position)) return `it:${position.type === 'TRIM_HORIZON' ? 0 : records.length}`;
      const index = records.indexOf(position.sequenceNumber);
      return `it:${position.type === 'AT_SEQUENCE_NUMBER' ? index : index + 1}`;
    },
    records: async (iterator, limit) => {
      const from = at(iterator);
      const page = records.slice(from, from + limit);
      return {
        records: page.map((sequence) => ({
          eventID: sequence,
          eventName: 'INSERT',
          dynamodb: { SequenceNumber: sequence, ApproximateCreationDateTime: '2026-01-01T00:00:00Z' },
        })),
        next: `it:${from + page.length}`,
      };
    },
  };
  return { api, add: (sequence: string) => records.push(sequence) };
}

const sequencesOf = (event: DynamoDBStreamEvent) => event.Records.map((record) => record.dynamodb?.SequenceNumber);

let poller: StreamPoller | undefined;
afterEach(async () => {
  await poller?.stop();
  poller = undefined;
});

function start(api: StreamsApi, handler: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>, options = {}) {
  poller = startStreamPoller({
    streams: api,
    streamArn: 'arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s',
    handler,
    batchSize: 3,
    pollIntervalMs: 1,
    retryDelayMs: 1,
    ...options,
  });
  return poller;
}

describe('the local stream poller', () => {
  it("hands the stream's records to the handler in order, in batches, as Lambda's trigger delivers them", async () => {
    // Prepare
    const { api } = fakeStream(7);
    const batches: (string | undefined)[][] = [];
    const handler = vi.fn(async (event: DynamoDBStreamEvent) => void batches.push(sequencesOf(event)));

    // Act
    await start(api, handler).caughtUp();

    // Assess
    expect(batches).toEqual([
      ['101', '102', '103'],
      ['104', '105', '106'],
      ['107'],
    ]);
    const [event] = handler.mock.calls[0]!;
    expect(event.Records[0]).toMatchObject({
      eventSourceARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s',
      dynamodb: { ApproximateCreationDateTime: 1_767_225_600 },
    });
  });

  it('starts again at the lowest sequence number the handler reported, and only there', async () => {
    // Prepare: the first delivery of 102 fails (and 103 with it, as the publisher reports).
    const { api } = fakeStream(4);
    const batches: (string | undefined)[][] = [];
    let failed = false;
    const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
      batches.push(sequencesOf(event));
      if (failed || !sequencesOf(event).includes('102')) return { batchItemFailures: [] };
      failed = true;
      return { batchItemFailures: [{ itemIdentifier: '103' }, { itemIdentifier: '102' }] };
    };

    // Act
    await start(api, handler).caughtUp();

    // Assess
    expect(batches).toEqual([
      ['101', '102', '103'],
      ['102', '103', '104'],
    ]);
  });

  it('delivers a batch again whole when the handler throws', async () => {
    const { api } = fakeStream(2);
    const batches: (string | undefined)[][] = [];
    const handler = vi.fn(async (event: DynamoDBStreamEvent) => {
      batches.push(sequencesOf(event));
      if (batches.length === 1) throw new Error('crashed');
    });

    await start(api, handler).caughtUp();

    expect(batches).toEqual([
      ['101', '102'],
      ['101', '102'],
    ]);
  });

  it('gives up on a batch after maximumRetryAttempts retries, says so, and goes on after it', async () => {
    // Prepare: 102 always fails.
    const { api } = fakeStream(5);
    const batches: (string | undefined)[][] = [];
    const log = vi.fn();
    const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
      batches.push(sequencesOf(event));
      return { batchItemFailures: sequencesOf(event).includes('102') ? [{ itemIdentifier: '102' }] : [] };
    };

    // Act
    await start(api, handler, { maximumRetryAttempts: 2, log }).caughtUp();

    // Assess: the first delivery, two retries, then the records after the skipped batch.
    expect(batches).toEqual([
      ['101', '102', '103'],
      ['102', '103', '104'],
      ['102', '103', '104'],
      ['105'],
    ]);
    expect(log).toHaveBeenCalledWith(expect.stringContaining('gave up on records 102 to 104 after 2 retries'));
  });

  it('from LATEST, hands over only what the stream gets after the start', async () => {
    const stream = fakeStream(3);
    const batches: (string | undefined)[][] = [];
    const started = start(stream.api, async (event) => void batches.push(sequencesOf(event)), { startingPosition: 'LATEST' });
    await started.caughtUp();

    stream.add('104');
    await started.caughtUp();

    expect(batches).toEqual([['104']]);
  });
});
