import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as SdkStreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { localLambdaContext } from './lambda-context';

const FUNCTION_TIMEOUT_MS = 30_000;

export type StreamHandler = (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse | void>;

/** A record as GetRecords answers it: Lambda's shape, less the stream's ARN, its time as read. */
export type StreamsRecord = Omit<DynamoDBRecord, 'eventSourceARN' | 'dynamodb'> & {
  dynamodb?: Omit<NonNullable<DynamoDBRecord['dynamodb']>, 'ApproximateCreationDateTime'> & {
    ApproximateCreationDateTime?: Date | number | string | undefined;
  };
};

/** The three DynamoDB Streams calls a poller makes. */
export interface StreamsApi {
  shardIds(streamArn: string): Promise<string[]>;
  shardIterator(
    streamArn: string,
    shardId: string,
    position: { type: 'TRIM_HORIZON' | 'LATEST' } | { type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER'; sequenceNumber: string },
  ): Promise<string>;
  records(iterator: string, limit: number): Promise<{ records: StreamsRecord[]; next: string | undefined }>;
}

/** DynamoDB Streams through the SDK's client (shared/aws/clients.ts's dynamoStreamsClient). */
export function streamsApiOf(client: DynamoDBStreamsClient): StreamsApi {
  return {
    shardIds: async (streamArn) => {
      const { StreamDescription } = await client.send(new DescribeStreamCommand({ StreamArn: streamArn }));
      return (StreamDescription?.Shards ?? []).flatMap((shard) => (shard.ShardId ? [shard.ShardId] : []));
    },
    shardIterator: async (streamArn, shardId, position) => {
      const { ShardIterator } = await client.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: shardId,
          ShardIteratorType: position.type,
          ...('sequenceNumber' in position ? { SequenceNumber: position.sequenceNumber } : {}),
        }),
      );
      if (!ShardIterator) throw new Error(`GetShardIterator returned no iterator for ${shardId}`);
      return ShardIterator;
    },
    records: async (iterator, limit) => {
      const answer = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }));
      // The SDK's attribute values and Lambda's are the same JSON, typed apart.
      return { records: (answer.Records ?? []) as SdkStreamRecord[] as StreamsRecord[], next: answer.NextShardIterator };
    },
  };
}

/** The stream of a table (its latest, as Lambda's trigger names it). */
export async function tableStreamArn(dynamo: DynamoDBClient, tableName: string): Promise<string> {
  const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
  if (!Table?.LatestStreamArn) throw new Error(`table ${tableName} has no stream: infra/table.json's StreamSpecification makes one`);
  return Table.LatestStreamArn;
}

export interface StreamPollerOptions {
  streams: StreamsApi;
  streamArn: string;
  handler: StreamHandler;
  /** Like the trigger's StartingPosition: all the stream holds, or only what comes after the start. */
  startingPosition?: 'TRIM_HORIZON' | 'LATEST';
  /** Records per invocation at most, like the trigger's BatchSize. Default 100, as deployed. */
  batchSize?: number;
  /** Retries of a batch that reported a failure, like the trigger's MaximumRetryAttempts. Default 10. */
  maximumRetryAttempts?: number;
  /** The wait after an empty read of every shard. Default 500 ms. */
  pollIntervalMs?: number;
  /** The wait before a failed batch is delivered again. Default 1 s. */
  retryDelayMs?: number;
  functionName?: string;
  log?: (line: string) => void;
}

export interface StreamPoller {
  /** Resolves once the poller has read every shard to its end, having started after this call. */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

/** Where the poller is in one shard. */
interface ShardPosition {
  iterator?: string | undefined;
  /** The last record done: the next iterator starts after it. */
  done?: string;
  /** A failed record: the next iterator starts at it. */
  retryFrom?: string;
  attempts: number;
}

/**
 * Stands in for Lambda's DynamoDB stream trigger: reads each shard of the stream in order, hands
 * the records to the handler in batches, and, as Lambda does with ReportBatchItemFailures, starts
 * again at the lowest sequence number the handler reported; a batch that throws is delivered again
 * whole. After `maximumRetryAttempts` retries the records are skipped (deployed: described in the
 * stream's DLQ) and logged. No filter criteria: every record reaches the handler, which ignores
 * what is not an outbox insert.
 */
export function startStreamPoller(options: StreamPollerOptions): StreamPoller {
  const { streams, streamArn, handler } = options;
  const batchSize = options.batchSize ?? 100;
  const maximumRetryAttempts = options.maximumRetryAttempts ?? 10;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const functionName = options.functionName ?? 'publish-events';
  const log = options.log ?? (() => undefined);
  const positions = new Map<string, ShardPosition>();
  let waiters: (() => void)[] = [];
  let running = true;
  let invocation = 0;

  const iteratorOf = async (shardId: string, position: ShardPosition): Promise<string> => {
    if (position.iterator) return position.iterator;
    if (position.retryFrom) return streams.shardIterator(streamArn, shardId, { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: position.retryFrom });
    if (position.done) return streams.shardIterator(streamArn, shardId, { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: position.done });
    return streams.shardIterator(streamArn, shardId, { type: options.startingPosition ?? 'TRIM_HORIZON' });
  };

  /** One read and invocation in a shard; whether it found records. */
  const pollShard = async (shardId: string): Promise<boolean> => {
    let position = positions.get(shardId);
    if (!position) positions.set(shardId, (position = { attempts: 0 }));
    const { records, next } = await streams.records(await iteratorOf(shardId, position), batchSize);
    if (records.length === 0) {
      position.iterator = next;
      return false;
    }
    const event: DynamoDBStreamEvent = { Records: records.map((record) => toLambdaRecord(record, streamArn)) };
    const sequenceOf = (index: number) => event.Records[index]?.dynamodb?.SequenceNumber ?? '';
    let failedAt: number;
    try {
      const response = await handler(event, localLambdaContext(functionName, `local-stream-${++invocation}`, FUNCTION_TIMEOUT_MS));
      const reported = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
      failedAt = event.Records.findIndex((_, index) => reported.has(sequenceOf(index)));
    } catch (error) {
      log(`stream: the handler failed the whole batch: ${error instanceof Error ? error.message : String(error)}`);
      failedAt = 0;
    }
    if (failedAt === -1 || position.attempts >= maximumRetryAttempts) {
      if (failedAt !== -1) {
        log(`stream: gave up on records ${sequenceOf(failedAt)} to ${sequenceOf(records.length - 1)} after ${maximumRetryAttempts} retries (deployed: described in the events DLQ)`);
      }
      position.done = sequenceOf(records.length - 1);
      position.iterator = next;
      position.retryFrom = undefined;
      position.attempts = 0;
      return true;
    }
    // As Lambda: the records before the failed one are done; the stream resumes at it.
    if (failedAt > 0) position.done = sequenceOf(failedAt - 1);
    position.retryFrom = sequenceOf(failedAt);
    position.iterator = undefined;
    position.attempts++;
    log(`stream: ${failedAt} of ${records.length} records done; again from ${position.retryFrom} (retry ${position.attempts})`);
    await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
    return true;
  };

  const loop = async (): Promise<void> => {
    while (running) {
      let busy = false;
      const pending = waiters;
      try {
        for (const shardId of await streams.shardIds(streamArn)) busy = (await pollShard(shardId)) || busy;
      } catch (error) {
        log(`stream poll failed: ${error instanceof Error ? error.message : String(error)}`);
        busy = true;
      }
      if (!busy) {
        waiters = waiters.filter((waiter) => !pending.includes(waiter));
        for (const waiter of pending) waiter();
        await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
      }
    }
  };
  const looping = loop();

  return {
    caughtUp: () => new Promise<void>((resolve) => void waiters.push(resolve)),
    stop: async () => {
      running = false;
      await looping;
      for (const waiter of waiters) waiter();
    },
  };
}

/** A GetRecords record as Lambda delivers it: with the stream's ARN, its time in epoch seconds. */
function toLambdaRecord(record: StreamsRecord, streamArn: string): DynamoDBRecord {
  const { dynamodb, ...rest } = record;
  if (!dynamodb) return { ...rest, eventSourceARN: streamArn };
  const { ApproximateCreationDateTime: created, ...image } = dynamodb;
  const seconds =
    created === undefined ? undefined : Math.floor((typeof created === 'number' ? created * 1000 : new Date(created).getTime()) / 1000);
  return { ...rest, eventSourceARN: streamArn, dynamodb: { ...image, ...(seconds === undefined ? {} : { ApproximateCreationDateTime: seconds }) } };
}
