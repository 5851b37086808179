import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SqsRegistrationQueue } from '../../shared/aws/sqs-registration-queue';
import { TransientAwsError } from '../../shared/errors';
import { enqueueRegistration } from '../../shared/provisioning/enqueue-registration';
import type { Registration } from '../../shared/core/registration';
import {
  aRequest,
  awsError,
  claimFindsExisting,
  existingRegistration,
  mockedProvisioning,
  type MockedProvisioning,
} from '../support/provisioning-fakes';

const NOW = new Date('2026-03-01T12:00:00.000Z');

describe('enqueueRegistration', () => {
  let m: MockedProvisioning;
  const sqs = new SQSClient({ region: 'us-east-1' });
  const sqsMock = mockClient(sqs);
  const enqueue = () =>
    enqueueRegistration(
      { registrationId: 'reg-1', request: aRequest(), now: NOW },
      { ...m.deps, queue: new SqsRegistrationQueue({ client: sqs, queueUrl: 'https://sqs.test/q' }) },
    );
  const existing = (state: Registration['state']) => claimFindsExisting(m, existingRegistration({ state }));

  beforeEach(() => {
    m = mockedProvisioning();
    sqsMock.reset();
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
  });

  it('records the registration QUEUED, then sends the request to the queue', async () => {
    const result = await enqueue();

    expect(result).toMatchObject({ outcome: 'queued', registration: { state: 'QUEUED', leaseExpiresAt: 0 } });
    const claim = m.dynamoMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Put?.Item;
    expect(claim).toMatchObject({ state: 'QUEUED' });
    expect(JSON.parse(String(sqsMock.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody))).toEqual({
      registrationId: 'reg-1',
      request: aRequest(),
    });
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
  });

  it('sends an unfinished registration again, since its first message may have been lost', async () => {
    existing('QUEUED');

    expect((await enqueue()).outcome).toBe('requeued');
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(1);
  });

  it('replays a finished registration without a message', async () => {
    existing('ACTIVE');

    expect((await enqueue()).outcome).toBe('replayed');
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('answers retry-later when the queue is unavailable, keeping the QUEUED record for the retry', async () => {
    sqsMock.on(SendMessageCommand).rejects(awsError('ServiceUnavailable', 503));

    await expect(enqueue()).rejects.toBeInstanceOf(TransientAwsError);
  });
});

// One provisioning queue per shard (QUEUE_URLS): a worker batch then holds one shard's
// registrations, paced by that shard's budget alone (docs/capacity.md).
describe('enqueueRegistration over shards', () => {
  const HOME_QUEUE = 'https://sqs.test/keyplan-provisioning';
  const EU_QUEUE = 'https://sqs.test/keyplan-provisioning-eu1';
  let m: MockedProvisioning;
  const sqs = new SQSClient({ region: 'us-east-1' });
  const sqsMock = mockClient(sqs);
  const home = { id: 'home', plans: { free: 'plan-free', pro: 'plan-pro' }, keyCeiling: 10_000, state: 'accepting' } as const;
  const eu1 = { ...home, id: 'eu1', plans: { free: 'eu-free', pro: 'eu-pro' } };
  const enqueue = (shardQueueUrls?: Record<string, string>) =>
    enqueueRegistration(
      { registrationId: 'reg-1', request: aRequest(), now: NOW },
      { ...m.deps, queue: new SqsRegistrationQueue({ client: sqs, queueUrl: HOME_QUEUE, shardQueueUrls }) },
    );
  const sentTo = () => sqsMock.commandCalls(SendMessageCommand).map((call) => call.args[0].input.QueueUrl);
  /** Only `open` takes new customers: the claim places the registration there. */
  const placeOn = (open: 'home' | 'eu1') => {
    m.deps.settings = {
      ...m.deps.settings,
      shards: [home, eu1].map((shard) => ({ ...shard, state: shard.id === open ? 'accepting' : 'draining' })),
    };
  };

  beforeEach(() => {
    m = mockedProvisioning();
    sqsMock.reset();
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
  });

  it("sends a registration placed on another shard to that shard's own queue", async () => {
    placeOn('eu1');

    const result = await enqueue({ eu1: EU_QUEUE });

    expect(result.registration.shard).toBe('eu1');
    expect(sentTo()).toEqual([EU_QUEUE]);
  });

  it("sends a registration placed on the home shard to the home queue (QUEUE_URL)", async () => {
    placeOn('home');

    await enqueue({ eu1: EU_QUEUE });

    expect(sentTo()).toEqual([HOME_QUEUE]);
  });

  it('sends to the home queue for a shard without a queue of its own, as before QUEUE_URLS', async () => {
    placeOn('eu1');

    await enqueue();

    expect(sentTo()).toEqual([HOME_QUEUE]);
  });

  it('resends an unfinished registration to the queue of the shard it was placed on, not where placement would put it now', async () => {
    placeOn('home');
    claimFindsExisting(m, existingRegistration({ state: 'QUEUED', shard: 'eu1', usagePlanId: 'eu-free' }));

    expect((await enqueue({ eu1: EU_QUEUE })).outcome).toBe('requeued');
    expect(sentTo()).toEqual([EU_QUEUE]);
  });
});

describe('SqsRegistrationQueue', () => {
  const queue = new SqsRegistrationQueue({
    client: new SQSClient({ region: 'us-east-1' }),
    queueUrl: 'https://sqs.test/home',
    shardQueueUrls: { eu1: 'https://sqs.test/eu1' },
  });

  it("picks the shard's own queue, else the home queue; a registration naming no shard is the home shard's", () => {
    expect(queue.queueUrlOf('eu1')).toBe('https://sqs.test/eu1');
    expect(queue.queueUrlOf('home')).toBe('https://sqs.test/home');
    expect(queue.queueUrlOf('us2')).toBe('https://sqs.test/home');
    expect(queue.queueUrlOf(undefined)).toBe('https://sqs.test/home');
  });

  it('finds no queue in the names every object inherits', () => {
    expect(queue.queueUrlOf('constructor')).toBe('https://sqs.test/home');
    expect(queue.queueUrlOf('__proto__')).toBe('https://sqs.test/home');
  });
});
