import { DynamoDBClient, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePublishEvents } from '../../functions/publish-events/composition';
import type { LocalStack } from '../../infra/local/bootstrap';
import { startStreamPoller, type StreamPoller, type StreamsApi, streamsApiOf, tableStreamArn } from '../../infra/local/stream-poller';
import { createAwsClients } from '../../shared/aws/clients';
import { customerPk, EVENT_SK_PREFIX } from '../../shared/aws/table-keys';
import { type Config, loadConfig } from '../../shared/config';
import type { RecordedEvent } from '../../shared/core/events';
import { keyNameFor } from '../../shared/core/registration';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { createProvisioningDeps } from '../../shared/wiring/compose';
import { lambdaContext } from '../support/api-events';
import { keysNamed } from '../support/emulator-probe';
import { useLocalStack } from '../support/local-env';

/**
 * The outbox to the bus, against the emulator: a real use case writes its events with its change,
 * the local stream poller hands the table's stream to the publisher as Lambda's trigger would, and
 * the events arrive on the default bus, where the bootstrap's tap rule copies them to a queue.
 */

/** An event as EventBridge delivers it to a rule's SQS target. */
interface Delivered {
  id: string;
  source: string;
  region: string;
  'detail-type': string;
  time: string;
  resources: unknown[];
  detail: Record<string, unknown> & { eventId: string; customerId: string; sequence: number };
}

let stack: LocalStack;
let config: Config;
let dynamo: DynamoDBClient;
let streamsClient: DynamoDBStreamsClient;
let streams: StreamsApi;
let streamArn: string;
let poller: StreamPoller;
const aws = () => createAwsClients();
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;

/**
 * The tap queue's events of these customers, once `count` of them arrived: the others' messages
 * (other test files write events too) are left for whoever reads them.
 */
async function tapped(sqs: SQSClient, customerIds: string[], count: number, timeoutMs = 15_000): Promise<Delivered[]> {
  const mine: Delivered[] = [];
  const others: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    while (mine.length < count && Date.now() < deadline) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: stack.eventsTapQueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
      );
      if (Messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      const own = Messages.filter((message) => customerIds.includes((JSON.parse(message.Body ?? '{}') as Delivered).detail?.customerId));
      others.push(...Messages.filter((message) => !own.includes(message)));
      mine.push(...own.map((message) => JSON.parse(message.Body ?? '{}') as Delivered));
      if (own.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: stack.eventsTapQueueUrl,
            Entries: own.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
          }),
        );
      }
    }
  } finally {
    for (let start = 0; start < others.length; start += 10) {
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: stack.eventsTapQueueUrl,
          Entries: others.slice(start, start + 10).map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: 0,
          })),
        }),
      );
    }
  }
  return mine;
}

/** The customer's outbox items, in sequence order. */
async function outboxOf(customerId: string): Promise<RecordedEvent[]> {
  const { Items = [] } = await aws().dynamo.send(
    new QueryCommand({
      TableName: stack.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)',
      ExpressionAttributeValues: { ':pk': customerPk(customerId), ':events': EVENT_SK_PREFIX },
    }),
  );
  return Items as RecordedEvent[];
}

async function provision(customerId: string) {
  await provisionKey(
    { registrationId: customerId, request: { customerId, email: `${customerId}@example.com`, tier: 'free' }, now: new Date() },
    createProvisioningDeps(config),
  );
}

/** Every record of the stream from `iterator` on, read to its end. */
async function readStream(iterator: string): Promise<DynamoDBRecord[]> {
  const records: DynamoDBRecord[] = [];
  for (let next: string | undefined = iterator; next; ) {
    const page = await streams.records(next, 1000);
    records.push(...page.records.map((record) => ({ ...record, eventSourceARN: streamArn }) as DynamoDBRecord));
    if (page.records.length === 0) break;
    next = page.next;
  }
  return records;
}

const latestIterators = async () =>
  Promise.all((await streams.shardIds(streamArn)).map((shardId) => streams.shardIterator(streamArn, shardId, { type: 'LATEST' })));

beforeAll(async () => {
  stack = useLocalStack();
  config = loadConfig({ ...process.env, MANAGEMENT_CALLS_PER_SECOND: '500' });
  dynamo = new DynamoDBClient({});
  streamsClient = new DynamoDBStreamsClient({});
  streams = streamsApiOf(streamsClient);
  streamArn = await tableStreamArn(dynamo, stack.tableName);
  // From what is written from now on, as the deployed trigger does from its creation; quick, as
  // the integration tests' other files write to the same table.
  poller = startStreamPoller({ streams, streamArn, handler: composePublishEvents(config), startingPosition: 'LATEST', pollIntervalMs: 100 });
  await poller.caughtUp();
});

afterAll(async () => {
  await poller?.stop();
  dynamo?.destroy();
  streamsClient?.destroy();
});

describe('lifecycle events from the outbox to the bus', () => {
  it("publishes a new customer's events with its stage's source, in sequence order, each detail as the outbox holds it", async () => {
    // Prepare
    const customerId = unique('events');

    // Act
    await provision(customerId);
    await poller.caughtUp();

    // Assess
    const outbox = await outboxOf(customerId);
    expect(outbox.map((item) => [item.sequence, item.type])).toEqual([
      [1, 'KeyProvisioned'],
      [2, 'KeyEmailed'],
    ]);
    const delivered = await tapped(aws().sqs, [customerId], outbox.length);
    expect(delivered.map((event) => event.detail.sequence)).toEqual([1, 2]);
    // The envelope as EventBridge's SQS targets get it (moto leaves out `account`).
    expect(delivered.map(({ source, 'detail-type': type, time, region, resources, detail }) => ({ source, type, time, region, resources, detail }))).toEqual(
      outbox.map((item) => ({
        source: 'keyplan.local',
        type: item.type,
        // EventBridge keeps the event's time to the second.
        time: `${item.time.slice(0, 19)}Z`,
        region: stack.region,
        resources: [],
        detail: {
          eventId: item.eventId,
          customerId,
          sequence: item.sequence,
          time: item.time,
          correlationId: item.correlationId,
          ...item.detail,
        },
      })),
    );
    // Ids and a fingerprint, never the key's value.
    const [key] = await keysNamed(aws().apiGateway, keyNameFor(config.keyNamePrefix, customerId));
    expect(key?.value).toMatch(/^kp_/);
    expect(JSON.stringify(delivered)).not.toContain(String(key?.value));
    expect(delivered[0]?.detail).toMatchObject({ keyId: key?.id, tier: 'free' });
  });

  it('publishes an event again when its stream record is delivered again: at least once, with the same eventId', async () => {
    // Prepare: the stream's records of one customer's registration, as Lambda would hand them over.
    const customerId = unique('replay');
    const iterators = await latestIterators();
    await provision(customerId);
    await poller.caughtUp();
    const firstDelivery = await tapped(aws().sqs, [customerId], 2);
    const records = (await Promise.all(iterators.map(readStream)))
      .flat()
      .filter((record) => record.eventName === 'INSERT' && record.dynamodb?.Keys?.pk?.S === customerPk(customerId))
      .filter((record) => record.dynamodb?.Keys?.sk?.S?.startsWith(EVENT_SK_PREFIX));
    expect(records).toHaveLength(2);

    // Act: the same batch again (a retry after a timeout, a redeployed trigger).
    const response = (await composePublishEvents(config)({ Records: records }, lambdaContext())) as DynamoDBBatchResponse;

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const again = await tapped(aws().sqs, [customerId], 2);
    expect(again.map((event) => event.detail.eventId)).toEqual(firstDelivery.map((event) => event.detail.eventId));
    expect(new Set(again.map((event) => event.id)).size).toBe(2);
    expect(again.map((event) => event.id)).not.toEqual(firstDelivery.map((event) => event.id));
  });

  it('streams nothing of a cancelled transaction: its outbox item never reaches the publisher', async () => {
    // Prepare
    const customerId = unique('cancelled');
    const iterators = await latestIterators();
    const item = (sk: string) => ({ pk: { S: customerPk(customerId) }, sk: { S: sk } });

    // Act: an event written with a change whose condition fails, after the event's put.
    const cancelled = dynamo.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: stack.tableName, Item: { ...item(`${EVENT_SK_PREFIX}000000000001`), type: { S: 'KeyProvisioned' } } } },
          { ConditionCheck: { TableName: stack.tableName, Key: item('PROFILE'), ConditionExpression: 'attribute_exists(pk)' } },
        ],
      }),
    );

    // Assess
    await expect(cancelled).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    const records = (await Promise.all(iterators.map(readStream))).flat();
    expect(records.filter((record) => record.dynamodb?.Keys?.pk?.S === customerPk(customerId))).toEqual([]);
  });
});
