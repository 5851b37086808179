import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamsRecord,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import type { EventFeed, FollowOptions } from '../audit/event-feed';
import { ConfigError } from '../config';
import type { RecordedEvent } from '../core/events';
import { ValidationError } from '../errors';
import { awsErrorName, guardDynamo, isTransient, translateDynamoError } from './aws-errors';
import { outboxEventOf } from './outbox-stream';

/** GetRecords answers at most this many records. */
const RECORDS_PER_READ = 1000;
/** Failures of AWS in a row (throttling, 5xx, a dropped connection) the feed waits out before it gives up. */
const TRANSIENT_FAILURES_TOLERATED = 5;

export interface EventStreamReaderOptions {
  /** For DescribeTable: the stream is the table's latest. */
  dynamo: DynamoDBDocumentClient;
  streams: DynamoDBStreamsClient;
  tableName: string;
  /** The wait after a round that read nothing from any shard. Default 1 s. */
  pollIntervalMs?: number;
  /** How often the stream's shards are listed again, to find the ones that opened since. Default 5 s. */
  rediscoverMs?: number;
  /** The first wait after a transient failure, doubled on each one in a row. Default 1 s. */
  backoffMs?: number;
  /** Elapsed time, for the rediscovery; tests pass their own clock. */
  now?: () => number;
}

/** Where the reader is in one shard of the stream. */
interface ShardPosition {
  parentId: string | undefined;
  /** Where an iterator starts when there is no record to start after. */
  start: 'LATEST' | 'TRIM_HORIZON';
  iterator?: string | undefined;
  /** The last record read: a new iterator (the old one expired) starts after it. */
  last?: string | undefined;
  /** Read to its end: a closed shard whose last records were read, or one closed before the start. */
  ended: boolean;
}

/**
 * The lifecycle events as the outbox commits them, read from the table's DynamoDB stream
 * (NEW_IMAGE): what the publisher's trigger reads, read a second time (AWS advises at most two
 * readers of a stream at once). It starts at the end of every open shard (LATEST), so it shows
 * what commits from then on, and reads a shard that opens later (a child of one that closed) from
 * its start, after its parent, so that a customer's events keep their order. Shards are listed
 * again every few seconds. Every record that is not an inserted outbox item (`EVENT#` sort key) is
 * passed over: profiles, keys, registrations, the TTL's removals.
 */
export class EventStreamReader implements EventFeed {
  readonly #dynamo: DynamoDBDocumentClient;
  readonly #streams: DynamoDBStreamsClient;
  readonly #table: string;
  readonly #pollIntervalMs: number;
  readonly #rediscoverMs: number;
  readonly #backoffMs: number;
  readonly #now: () => number;

  constructor(options: EventStreamReaderOptions) {
    this.#dynamo = options.dynamo;
    this.#streams = options.streams;
    this.#table = options.tableName;
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#rediscoverMs = options.rediscoverMs ?? 5000;
    this.#backoffMs = options.backoffMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * @throws ConfigError when the table has no stream, or one without new images
   * @throws the SDK's error when the table does not exist or access is denied; TransientAwsError
   *   when AWS kept failing
   */
  async *follow(options: FollowOptions): AsyncGenerator<RecordedEvent> {
    const { signal } = options;
    try {
      const streamArn = await this.#streamArn(signal);
      const shards = new Map<string, ShardPosition>();
      await this.#discover(streamArn, shards, true, signal);
      options.onStart?.();
      let discoveredAt = this.#now();
      let failures = 0;
      while (!signal.aborted) {
        let read = 0;
        try {
          if (this.#now() - discoveredAt >= this.#rediscoverMs) {
            await this.#discover(streamArn, shards, false, signal);
            discoveredAt = this.#now();
          }
          for (const [shardId, position] of shards) {
            if (!readable(position, shards)) continue;
            const records = await this.#read(streamArn, shardId, position, signal);
            read += records.length;
            for (const record of records) {
              const event = eventOf(record, options.onMalformed);
              if (event) yield event;
              if (signal.aborted) return;
            }
          }
          failures = 0;
        } catch (error) {
          // A follower runs for hours: it waits out a passing failure instead of ending on it.
          if (signal.aborted || !isTransient(error) || ++failures > TRANSIENT_FAILURES_TOLERATED) throw error;
          await pause(this.#backoffMs * 2 ** (failures - 1), signal);
          continue;
        }
        if (read === 0) await pause(this.#pollIntervalMs, signal);
      }
    } catch (error) {
      // Stopping aborts the call in flight: the end of the feed, not a failure.
      if (signal.aborted) return;
      throw translateDynamoError(error);
    }
  }

  async #streamArn(signal: AbortSignal): Promise<string> {
    const { Table } = await guardDynamo(this.#dynamo.send(new DescribeTableCommand({ TableName: this.#table }), { abortSignal: signal }));
    const stream = Table?.StreamSpecification;
    if (!Table?.LatestStreamArn || stream?.StreamEnabled === false) {
      throw new ConfigError(
        `table ${this.#table} has no stream: enable it (infra/table.json's StreamSpecification, NEW_IMAGE) to follow its events`,
      );
    }
    if (stream?.StreamViewType === 'KEYS_ONLY' || stream?.StreamViewType === 'OLD_IMAGE') {
      throw new ConfigError(`the stream of table ${this.#table} shows ${stream.StreamViewType}: following its events needs NEW_IMAGE`);
    }
    return Table.LatestStreamArn;
  }

  /**
   * Lists the stream's shards and takes in the new ones. At the start, the open shards are read
   * from their end and the closed ones not at all (what they hold came before); any shard found
   * later opened after the start and is read whole.
   */
  async #discover(streamArn: string, shards: Map<string, ShardPosition>, atStart: boolean, signal: AbortSignal): Promise<void> {
    let after: string | undefined;
    const found: Shard[] = [];
    do {
      const { StreamDescription: stream } = await this.#streams.send(
        new DescribeStreamCommand({ StreamArn: streamArn, ...(after ? { ExclusiveStartShardId: after } : {}) }),
        { abortSignal: signal },
      );
      found.push(...(stream?.Shards ?? []));
      after = stream?.LastEvaluatedShardId;
    } while (after);
    for (const shard of found) {
      if (!shard.ShardId || shards.has(shard.ShardId)) continue;
      const closed = shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
      const position: ShardPosition = {
        parentId: shard.ParentShardId,
        start: atStart ? 'LATEST' : 'TRIM_HORIZON',
        ended: atStart && closed,
      };
      shards.set(shard.ShardId, position);
      // The end of each open shard is taken now, so that whatever commits after the start is read.
      if (atStart && !closed) position.iterator = await this.#iterator(streamArn, shard.ShardId, position, signal);
    }
  }

  async #iterator(streamArn: string, shardId: string, position: ShardPosition, signal: AbortSignal): Promise<string | undefined> {
    const { ShardIterator } = await this.#streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shardId,
        ...(position.last
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: position.last }
          : { ShardIteratorType: position.start }),
      }),
      { abortSignal: signal },
    );
    return ShardIterator;
  }

  /** One GetRecords in the shard: its records, in order; the position moves past them. */
  async #read(streamArn: string, shardId: string, position: ShardPosition, signal: AbortSignal): Promise<StreamsRecord[]> {
    position.iterator ??= await this.#iterator(streamArn, shardId, position, signal);
    if (!position.iterator) {
      position.ended = true;
      return [];
    }
    try {
      const { Records = [], NextShardIterator } = await this.#streams.send(
        new GetRecordsCommand({ ShardIterator: position.iterator, Limit: RECORDS_PER_READ }),
        { abortSignal: signal },
      );
      position.iterator = NextShardIterator;
      // No next iterator: the shard is closed and read to its end; its children may be read now.
      if (!NextShardIterator) position.ended = true;
      position.last = Records.at(-1)?.dynamodb?.SequenceNumber ?? position.last;
      return Records;
    } catch (error) {
      const name = awsErrorName(error);
      // An iterator lives 15 minutes: a new one starts after the last record read.
      if (name === 'ExpiredIteratorException') position.iterator = undefined;
      // The records after the last one read are past the stream's 24 hours: on from the oldest kept.
      else if (name === 'TrimmedDataAccessException') Object.assign(position, { iterator: undefined, last: undefined, start: 'TRIM_HORIZON' });
      // The shard itself is past them.
      else if (name === 'ResourceNotFoundException') Object.assign(position, { iterator: undefined, ended: true });
      else throw error;
      return [];
    }
  }
}

/** A shard is read once its parent, if the reader knows it, was read to its end. */
function readable(position: ShardPosition, shards: ReadonlyMap<string, ShardPosition>): boolean {
  if (position.ended) return false;
  const parent = position.parentId === undefined ? undefined : shards.get(position.parentId);
  return parent === undefined || parent.ended;
}

/** The event of an inserted outbox item; none for any other record, nor for a malformed item (reported). */
function eventOf(record: StreamsRecord, onMalformed: FollowOptions['onMalformed']): RecordedEvent | undefined {
  // GetRecords' record is Lambda's but for the binary values (bytes, not base64) and the
  // creation time, neither of which an outbox item has or the reading uses.
  const { eventName, dynamodb } = record;
  const shaped = { eventName, dynamodb: { Keys: dynamodb?.Keys, NewImage: dynamodb?.NewImage } } as DynamoDBRecord;
  try {
    return outboxEventOf(shaped);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    onMalformed?.(`outbox item ${dynamodb?.Keys?.pk?.S ?? '?'} ${dynamodb?.Keys?.sk?.S ?? '?'} is not an event: ${error.message}`);
    return undefined;
  }
}

/** Waits `ms`, or less if the signal aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
