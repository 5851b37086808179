import { DescribeTableCommand, DynamoDBClient, type TableDescription } from '@aws-sdk/client-dynamodb';
import {
  type _Record as StreamsRecord,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
} from '@aws-sdk/client-dynamodb-streams';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import type { FollowOptions } from '../../shared/audit/event-feed';
import { EventStreamReader } from '../../shared/aws/event-stream-reader';
import { eventKey, profileKey } from '../../shared/aws/table-keys';
import { ConfigError } from '../../shared/config';
import type { RecordedEvent } from '../../shared/core/events';
import { TransientAwsError } from '../../shared/errors';
import { recordedEvent } from '../support/stream-events';

const TABLE = 'keyplan-test';
const STREAM_ARN = `arn:aws:dynamodb:us-east-1:123456789012:table/${TABLE}/stream/2026-01-01T00:00:00.000`;
const NEW_IMAGE_STREAM: TableDescription = {
  LatestStreamArn: STREAM_ARN,
  StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' },
};

interface FakeShard {
  id: string;
  parent?: string;
  closed: boolean;
  records: StreamsRecord[];
}

let sequenceNumber = 100;

/** A record as GetRecords answers it, of an insert (or `eventName`) of `item`. */
function record(item: Record<string, unknown> & { pk: string; sk: string }, eventName: StreamsRecord['eventName'] = 'INSERT'): StreamsRecord {
  return {
    eventName,
    dynamodb: {
      Keys: marshall({ pk: item.pk, sk: item.sk }),
      ...(eventName === 'REMOVE' ? {} : { NewImage: marshall(item, { removeUndefinedValues: true }) }),
      SequenceNumber: String(++sequenceNumber),
      StreamViewType: 'NEW_IMAGE',
    },
  } as StreamsRecord;
}

/** The outbox item of an event, as customer-ledger.ts's outboxPuts writes it. */
const outboxItem = (event: RecordedEvent) => record({ ...eventKey(event.customerId, event.sequence), ...event, expiresAt: 1_800_000_000 });

/**
 * A table and its stream in memory, through the SDK's clients: iterators are `shard:position`,
 * and GetRecords answers at most `perRead` records, as DynamoDB may answer fewer than asked for.
 */
function fakeStream(shards: FakeShard[], options: { table?: TableDescription; perRead?: number; shardsPerPage?: number } = {}) {
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  const streams = new DynamoDBStreamsClient({ region: 'us-east-1' });
  const tableMock = mockClient(dynamo);
  const streamsMock = mockClient(streams);
  tableMock.on(DescribeTableCommand).resolves({ Table: { TableName: TABLE, ...(options.table ?? NEW_IMAGE_STREAM) } });
  const page = options.shardsPerPage ?? 100;
  streamsMock.on(DescribeStreamCommand).callsFake((input: { ExclusiveStartShardId?: string }) => {
    const from = input.ExclusiveStartShardId ? shards.findIndex((s) => s.id === input.ExclusiveStartShardId) + 1 : 0;
    const listed = shards.slice(from, from + page);
    return {
      StreamDescription: {
        StreamArn: STREAM_ARN,
        Shards: listed.map((shard) => ({
          ShardId: shard.id,
          ...(shard.parent ? { ParentShardId: shard.parent } : {}),
          SequenceNumberRange: {
            StartingSequenceNumber: '1',
            ...(shard.closed ? { EndingSequenceNumber: shard.records.at(-1)?.dynamodb?.SequenceNumber ?? '1' } : {}),
          },
        })),
        ...(from + page < shards.length ? { LastEvaluatedShardId: listed.at(-1)?.id } : {}),
      },
    };
  });
  streamsMock.on(GetShardIteratorCommand).callsFake((input: GetShardIteratorCommandInput) => {
    const shard = shards.find((s) => s.id === input.ShardId)!;
    const after = shard.records.findIndex((r) => r.dynamodb?.SequenceNumber === input.SequenceNumber) + 1;
    const position = { LATEST: shard.records.length, TRIM_HORIZON: 0, AFTER_SEQUENCE_NUMBER: after }[input.ShardIteratorType as string];
    return { ShardIterator: `${shard.id}:${position}` };
  });
  streamsMock.on(GetRecordsCommand).callsFake((input: { ShardIterator: string }) => {
    const [id, at] = input.ShardIterator.split(':') as [string, string];
    const shard = shards.find((s) => s.id === id)!;
    const records = shard.records.slice(Number(at), Number(at) + (options.perRead ?? 1000));
    const next = Number(at) + records.length;
    return { Records: records, ...(shard.closed && next === shard.records.length ? {} : { NextShardIterator: `${id}:${next}` }) };
  });
  return { dynamo, streams, tableMock, streamsMock };
}

/** The reader over a fake stream, fast: no wait between rounds, the shards listed again every round. */
const readerOf = (fake: ReturnType<typeof fakeStream>) =>
  new EventStreamReader({ dynamo: fake.dynamo, streams: fake.streams, tableName: TABLE, pollIntervalMs: 1, rediscoverMs: 0, backoffMs: 1 });

/** Follows until `wanted` events came (then stops): the events, in the order they came. */
async function take(reader: EventStreamReader, wanted: number, options: Partial<FollowOptions> = {}): Promise<RecordedEvent[]> {
  const controller = new AbortController();
  const events: RecordedEvent[] = [];
  for await (const event of reader.follow({ ...options, signal: controller.signal })) {
    events.push(event);
    if (events.length === wanted) controller.abort();
  }
  return events;
}

describe('EventStreamReader', () => {
  it('brings the events committed after the start, in order, as recorded, and nothing else of the table', async () => {
    // Prepare: an event from before the start, then a registration's commits after it
    const before = recordedEvent('cust-0', 1);
    const shard: FakeShard = { id: 'shard-1', closed: false, records: [outboxItem(before)] };
    const fake = fakeStream([shard]);
    const provisioned = recordedEvent('cust-1', 1, 'KeyProvisioned');
    const emailed = recordedEvent('cust-1', 2, 'KeyEmailed');
    const commit = () =>
      shard.records.push(
        record({ ...profileKey('cust-1'), tier: 'free' }),
        outboxItem(provisioned),
        record({ ...eventKey('cust-1', 1), ...provisioned }, 'MODIFY'),
        record({ ...eventKey('cust-0', 1) }, 'REMOVE'),
        outboxItem(emailed),
      );

    // Act
    const events = await take(readerOf(fake), 2, { onStart: commit });

    // Assess: the event whole, without the item's keys or its TTL
    expect(events).toEqual([provisioned, emailed]);
    expect(fake.tableMock.commandCalls(DescribeTableCommand)[0]?.args[0].input).toEqual({ TableName: TABLE });
    expect(fake.streamsMock.commandCalls(GetShardIteratorCommand)[0]?.args[0].input).toEqual({
      StreamArn: STREAM_ARN,
      ShardId: 'shard-1',
      ShardIteratorType: 'LATEST',
    });
  });

  it('reads a shard that opens later from its start, once its parent is read to its end, and never a shard closed before the start', async () => {
    // Prepare: shard-0 closed before the start; shard-1 open, then closed with shard-2 as its child
    const old: FakeShard = { id: 'shard-0', closed: true, records: [outboxItem(recordedEvent('cust-0', 1))] };
    const parent: FakeShard = { id: 'shard-1', parent: 'shard-0', closed: false, records: [] };
    const shards = [old, parent];
    const fake = fakeStream(shards, { perRead: 1 });
    const [first, second, third] = [1, 2, 3].map((sequence) => recordedEvent('cust-1', sequence));
    const split = () => {
      parent.records.push(outboxItem(first!), outboxItem(second!));
      parent.closed = true;
      shards.push({ id: 'shard-2', parent: 'shard-1', closed: false, records: [outboxItem(third!)] });
    };

    // Act
    const events = await take(readerOf(fake), 3, { onStart: split });

    // Assess: the child's event after both of its parent's, though each read brings one record
    expect(events.map((event) => event.sequence)).toEqual([1, 2, 3]);
    const iterators = fake.streamsMock.commandCalls(GetShardIteratorCommand).map((call) => call.args[0].input);
    expect(iterators.map((input) => [input.ShardId, input.ShardIteratorType])).toEqual([
      ['shard-1', 'LATEST'],
      ['shard-2', 'TRIM_HORIZON'],
    ]);
  });

  it('lists the shards page by page', async () => {
    // Prepare
    const shards: FakeShard[] = [1, 2, 3].map((n) => ({ id: `shard-${n}`, closed: false, records: [] }));
    const fake = fakeStream(shards, { shardsPerPage: 2 });
    const event = recordedEvent('cust-1', 1);

    // Act
    const events = await take(readerOf(fake), 1, { onStart: () => shards[2]!.records.push(outboxItem(event)) });

    // Assess
    expect(events).toEqual([event]);
    expect(fake.streamsMock.commandCalls(DescribeStreamCommand)[1]?.args[0].input).toEqual({
      StreamArn: STREAM_ARN,
      ExclusiveStartShardId: 'shard-2',
    });
  });

  it('reports a malformed outbox item and goes on', async () => {
    // Prepare
    const shard: FakeShard = { id: 'shard-1', closed: false, records: [] };
    const fake = fakeStream([shard]);
    const good = recordedEvent('cust-1', 2);
    const reasons: string[] = [];

    // Act
    const events = await take(readerOf(fake), 1, {
      onStart: () => shard.records.push(record({ ...eventKey('cust-1', 1), ...recordedEvent('cust-1', 1), type: 'KeyStolen' }), outboxItem(good)),
      onMalformed: (reason) => reasons.push(reason),
    });

    // Assess
    expect(events).toEqual([good]);
    expect(reasons).toEqual([expect.stringMatching(/^outbox item CUSTOMER#cust-1 EVENT#000000000001 is not an event: .*type must be one of/)]);
  });

  it.each([
    ['no stream', {}, /table keyplan-test has no stream: enable it \(infra\/table.json's StreamSpecification, NEW_IMAGE\)/],
    ['a disabled stream', { LatestStreamArn: STREAM_ARN, StreamSpecification: { StreamEnabled: false } }, /has no stream/],
    [
      'a stream of keys only',
      { LatestStreamArn: STREAM_ARN, StreamSpecification: { StreamEnabled: true, StreamViewType: 'KEYS_ONLY' } },
      /shows KEYS_ONLY: following its events needs NEW_IMAGE/,
    ],
  ] as const)('refuses a table with %s, with a configuration error', async (_, table, message) => {
    // Prepare
    const fake = fakeStream([], { table: table as TableDescription });

    // Act
    const following = take(readerOf(fake), 1);

    // Assess
    await expect(following).rejects.toThrow(ConfigError);
    await expect(following).rejects.toThrow(message);
    expect(fake.streamsMock.calls()).toHaveLength(0);
  });

  it('ends without an error when stopped while it waits for records', async () => {
    // Prepare
    const fake = fakeStream([{ id: 'shard-1', closed: false, records: [] }]);
    const reader = new EventStreamReader({ dynamo: fake.dynamo, streams: fake.streams, tableName: TABLE, pollIntervalMs: 60_000 });
    const controller = new AbortController();

    // Act
    const events: RecordedEvent[] = [];
    const following = (async () => {
      for await (const event of reader.follow({ signal: controller.signal, onStart: () => setTimeout(() => controller.abort(), 20) })) events.push(event);
    })();

    // Assess: at once, not after the minute's wait
    await expect(following).resolves.toBeUndefined();
    expect(events).toEqual([]);
  });

  it('ends without an error when stopping aborts the AWS call in flight', async () => {
    // Prepare
    const fake = fakeStream([{ id: 'shard-1', closed: false, records: [] }]);
    const controller = new AbortController();
    fake.streamsMock.on(GetRecordsCommand).callsFake(() => {
      controller.abort();
      throw Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
    });

    // Act
    const following = (async () => {
      for await (const _ of readerOf(fake).follow({ signal: controller.signal })) expect.unreachable();
    })();

    // Assess
    await expect(following).resolves.toBeUndefined();
  });

  it('takes a new iterator after the last record read when its iterator expired', async () => {
    // Prepare
    const shard: FakeShard = { id: 'shard-1', closed: false, records: [] };
    const fake = fakeStream([shard]);
    const [first, second] = [1, 2].map((sequence) => recordedEvent('cust-1', sequence));
    let reads = 0;
    const served = fake.streamsMock.on(GetRecordsCommand);
    const answer = (input: { ShardIterator: string }) => {
      const at = Number(input.ShardIterator.split(':')[1]);
      return { Records: shard.records.slice(at), NextShardIterator: `shard-1:${shard.records.length}` };
    };
    served.callsFake((input: { ShardIterator: string }) => {
      reads++;
      if (reads === 1) shard.records.push(outboxItem(first!));
      if (reads === 2) {
        shard.records.push(outboxItem(second!));
        throw Object.assign(new Error('Iterator expired'), { name: 'ExpiredIteratorException' });
      }
      return answer(input);
    });

    // Act
    const events = await take(readerOf(fake), 2);

    // Assess
    expect(events).toEqual([first, second]);
    expect(fake.streamsMock.commandCalls(GetShardIteratorCommand).at(-1)?.args[0].input).toEqual({
      StreamArn: STREAM_ARN,
      ShardId: 'shard-1',
      ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
      SequenceNumber: shard.records[0]?.dynamodb?.SequenceNumber,
    });
  });

  it('waits out a passing failure of AWS, and gives up on one that lasts', async () => {
    // Prepare
    const shard: FakeShard = { id: 'shard-1', closed: false, records: [] };
    const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'LimitExceededException', $metadata: { httpStatusCode: 400 } });
    const passing = fakeStream([shard]);
    let failures = 0;
    passing.streamsMock.on(GetRecordsCommand).callsFake(() => {
      if (++failures <= 3) throw throttled();
      return { Records: [outboxItem(recordedEvent('cust-1', 1))], NextShardIterator: 'shard-1:1' };
    });
    const lasting = fakeStream([{ ...shard }]);
    lasting.streamsMock.on(GetRecordsCommand).rejects(throttled());

    // Act
    const events = await take(readerOf(passing), 1);
    const givenUp = take(readerOf(lasting), 1);

    // Assess
    expect(events.map((event) => event.sequence)).toEqual([1]);
    await expect(givenUp).rejects.toThrow(TransientAwsError);
    expect(lasting.streamsMock.commandCalls(GetRecordsCommand)).toHaveLength(6);
  });

  it('fails at once on an error that waiting does not mend', async () => {
    // Prepare
    const fake = fakeStream([{ id: 'shard-1', closed: false, records: [] }]);
    const denied = Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
    fake.streamsMock.on(GetRecordsCommand).rejects(denied);

    // Act
    const following = take(readerOf(fake), 1);

    // Assess
    await expect(following).rejects.toBe(denied);
    expect(fake.streamsMock.commandCalls(GetRecordsCommand)).toHaveLength(1);
  });

  it('reads a shard again from its oldest record when its records were trimmed, and drops a shard that is gone', async () => {
    // Prepare
    const trimmed: FakeShard = { id: 'shard-1', closed: false, records: [] };
    const gone: FakeShard = { id: 'shard-2', closed: false, records: [] };
    const fake = fakeStream([trimmed, gone]);
    const event = recordedEvent('cust-1', 1);
    const reads = new Map<string, number>();
    fake.streamsMock.on(GetRecordsCommand).callsFake((input: { ShardIterator: string }) => {
      const [id, at] = input.ShardIterator.split(':') as [string, string];
      const count = (reads.get(id) ?? 0) + 1;
      reads.set(id, count);
      if (id === 'shard-2') throw Object.assign(new Error('gone'), { name: 'ResourceNotFoundException' });
      if (count === 1) {
        trimmed.records.push(outboxItem(event));
        throw Object.assign(new Error('trimmed'), { name: 'TrimmedDataAccessException' });
      }
      return { Records: trimmed.records.slice(Number(at)), NextShardIterator: `shard-1:${trimmed.records.length}` };
    });

    // Act
    const events = await take(readerOf(fake), 1);

    // Assess
    expect(events).toEqual([event]);
    const iterators = fake.streamsMock.commandCalls(GetShardIteratorCommand).map((call) => call.args[0].input);
    expect(iterators.map((input) => [input.ShardId, input.ShardIteratorType])).toEqual([
      ['shard-1', 'LATEST'],
      ['shard-2', 'LATEST'],
      ['shard-1', 'TRIM_HORIZON'],
    ]);
    expect(reads.get('shard-2')).toBe(1);
  });
});
