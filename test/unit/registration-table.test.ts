import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { RegistrationTable } from '../../shared/aws/registration-table';
import { event } from '../../shared/core/events';
import { RegistrationInProgressError } from '../../shared/errors';
import type { Registration } from '../../shared/core/registration';
import { existingRegistration } from '../support/provisioning-fakes';

// The write shapes of the registration's claim and record: the cheapest that keep the contract
// (a Put where the item is new, an update where others share it). What they do to the table is
// test/integration/customer-ledger.test.ts's; here, which shape goes out when.

const NOW = new Date('2026-03-01T12:00:00.000Z');
const PROFILE = { pk: 'CUSTOMER#cust-1', sk: 'PROFILE' };

const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }), {
  marshallOptions: { removeUndefinedValues: true },
});
const dynamoMock = mockClient(dynamo);
const table = new RegistrationTable({ client: dynamo, tableName: 'keyplan-test', retentionDays: 30 });

const fresh = (overrides: Partial<Registration> = {}) =>
  existingRegistration({ attemptId: 'attempt-1', leaseExpiresAt: NOW.getTime() + 60_000, ...overrides });

/** A cancelled transaction whose item `index` failed its condition, handing back `item`. */
function cancelled(index: number, item?: object, length = 2) {
  return new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: {},
    CancellationReasons: Array.from({ length }, (_, i) =>
      i === index ? { Code: 'ConditionalCheckFailed', ...(item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {}) } : { Code: 'None' },
    ),
  });
}

const transactions = () => dynamoMock.commandCalls(TransactWriteCommand).map((call) => call.args[0].input.TransactItems ?? []);

beforeEach(() => {
  dynamoMock.reset();
  dynamoMock.on(TransactWriteCommand).resolves({});
  // The customer's count of events, for an attempt that does not know it from its claim.
  dynamoMock.on(GetCommand).resolves({ Item: { eventSeq: 2 } });
});

describe('claim', () => {
  it('writes a new customer’s profile whole, with a Put that takes only a customer with no profile', async () => {
    const registration = fresh();

    // A new profile has written no event yet: the attempt knows its count without a read.
    expect(await table.claim(registration, NOW)).toEqual({ kind: 'claimed', registration: { ...registration, eventSeq: 0 } });

    expect(transactions()).toHaveLength(1);
    const [reg, customer] = transactions()[0]!;
    expect(reg?.Put?.Item).toMatchObject({ pk: 'REG#reg-1', state: 'PENDING', dueType: 'RESUME' });
    expect(customer?.Update).toBeUndefined();
    expect(customer?.Put).toMatchObject({
      ConditionExpression: 'attribute_not_exists(pk)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect(customer?.Put?.Item).toEqual({
      ...PROFILE,
      customerId: 'cust-1',
      registrationId: 'reg-1',
      status: 'PENDING',
      priorStatus: 'UNREGISTERED',
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
      keys: {},
      version: 1,
      lease: { owner: 'attempt-1', operation: 'register', until: NOW.getTime() + 60_000, mustFinish: true },
    });
  });

  it('leases nothing for a registration that waits in the queue', async () => {
    await table.claim(fresh({ state: 'QUEUED', leaseExpiresAt: 0 }), NOW);

    expect(transactions()[0]?.[1]?.Put?.Item).not.toHaveProperty('lease');
  });

  it('claims an UNREGISTERED customer with the update, which keeps its version and creation time', async () => {
    const unregistered = { ...PROFILE, customerId: 'cust-1', status: 'UNREGISTERED', version: 2, keys: {} };
    dynamoMock.on(TransactWriteCommand).rejectsOnce(cancelled(1, unregistered)).resolves({});
    const registration = fresh();

    expect(await table.claim(registration, NOW)).toEqual({ kind: 'claimed', registration });

    expect(transactions()).toHaveLength(2);
    const update = transactions()[1]?.[1]?.Update;
    expect(update?.UpdateExpression).toContain('#version = if_not_exists(#version, :zero) + :one');
    expect(update?.UpdateExpression).toContain('createdAt = if_not_exists(createdAt, :at)');
    expect(update?.ConditionExpression).toContain('#status = :unregistered');
  });

  it('answers busy when the UNREGISTERED customer’s lease is held, as the update’s condition finds it', async () => {
    const lease = { owner: 'reconciler', operation: 'reconcile', until: NOW.getTime() + 30_000, mustFinish: false };
    const held = { ...PROFILE, customerId: 'cust-1', status: 'UNREGISTERED', version: 3, keys: {}, lease };
    dynamoMock.on(TransactWriteCommand).rejects(cancelled(1, held));

    expect(await table.claim(fresh(), NOW)).toEqual({ kind: 'customer-busy', holder: lease });
    expect(transactions()).toHaveLength(2);
  });

  it('refuses a taken or revoked customer from the Put’s refusal alone: one call', async () => {
    dynamoMock.on(TransactWriteCommand).rejects(cancelled(1, { ...PROFILE, status: 'ACTIVE', registrationId: 'reg-0' }));
    expect(await table.claim(fresh(), NOW)).toEqual({ kind: 'customer-taken' });

    dynamoMock.reset();
    dynamoMock.on(TransactWriteCommand).rejects(cancelled(1, { ...PROFILE, status: 'REVOKED', registrationId: 'reg-0' }));
    expect(await table.claim(fresh(), NOW)).toEqual({ kind: 'customer-revoked' });
    expect(transactions()).toHaveLength(1);
  });

  it('answers a replay with the recorded registration', async () => {
    const recorded = fresh({ state: 'ACTIVE', keyId: 'key-1' });
    dynamoMock.on(TransactWriteCommand).rejects(cancelled(0, recorded));

    expect(await table.claim(fresh({ attemptId: 'attempt-2' }), NOW)).toEqual({ kind: 'exists', registration: recorded });
    expect(transactions()).toHaveLength(1);
  });

  it('re-activates a revoked customer with the update at once: its history stays', async () => {
    await table.claim(fresh({ reactivate: true }), NOW);

    expect(transactions()).toHaveLength(1);
    const update = transactions()[0]?.[1]?.Update;
    expect(update?.ConditionExpression).toContain('#status = :revoked');
    expect(transactions()[0]?.[1]?.Put).toBeUndefined();
  });
});

describe('recordKey', () => {
  const provisioned = event('KeyProvisioned', { keyId: 'key-1', registrationId: 'reg-1', tier: 'free', fingerprint: 'abcd1234' });
  const emailed = event('KeyEmailed', { keyId: 'key-1', fingerprint: 'abcd1234', reason: 'registration' });
  const record = (state: 'ACTIVE' | 'EMAIL_PENDING' = 'ACTIVE', registration = fresh()) =>
    table.recordKey({
      registration,
      keyId: 'key-1',
      fingerprint: 'abcd1234',
      state,
      rotateAt: '2026-05-30T12:00:00.000Z',
      now: NOW,
      events: state === 'ACTIVE' ? [provisioned, emailed] : [provisioned],
    });

  it('writes the key’s item whole, with a Put that never writes over an item', async () => {
    await record();

    const [reg, key, profile] = transactions()[0]!;
    expect(reg?.Update?.ConditionExpression).toBe('attemptId = :attemptId');
    expect(key?.Update).toBeUndefined();
    expect(key?.Put).toEqual({
      TableName: 'keyplan-test',
      Item: {
        pk: 'CUSTOMER#cust-1',
        sk: 'KEY#key-1',
        customerId: 'cust-1',
        keyId: 'key-1',
        state: 'ACTIVE',
        usagePlanId: existingRegistration().usagePlanId,
        tier: 'free',
        fingerprint: 'abcd1234',
        registrationId: 'reg-1',
        createdAt: NOW.toISOString(),
        rotateAt: '2026-05-30T12:00:00.000Z',
        dueType: 'ROTATE',
        dueAt: '2026-05-30T12:00:00.000Z',
        generation: 1,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    expect(profile?.Update?.ConditionExpression).toBe('#lease.#owner = :attemptId AND eventSeq = :seenSeq');
  });

  it('writes its events in the same transaction, numbered after the customer’s count, read once', async () => {
    await record();

    // The attempt took over a customer it did not create: the count is read (consistently).
    expect(dynamoMock.commandCalls(GetCommand).map((call) => call.args[0].input)).toEqual([
      { TableName: 'keyplan-test', Key: PROFILE, ProjectionExpression: 'eventSeq', ConsistentRead: true },
    ]);
    const items = transactions()[0]!;
    expect(items).toHaveLength(5);
    const profile = items[2]?.Update;
    expect(profile?.UpdateExpression).toContain(', eventSeq = :eventSeq REMOVE #lease, priorStatus');
    expect(profile?.ExpressionAttributeValues).toMatchObject({ ':eventSeq': 4, ':seenSeq': 2 });
    expect(items.slice(3).map((item) => item.Put)).toEqual([
      {
        TableName: 'keyplan-test',
        Item: {
          pk: 'CUSTOMER#cust-1',
          sk: 'EVENT#000000000003',
          eventId: expect.any(String),
          customerId: 'cust-1',
          sequence: 3,
          type: 'KeyProvisioned',
          time: NOW.toISOString(),
          correlationId: 'attempt-1',
          detail: { keyId: 'key-1', registrationId: 'reg-1', tier: 'free', fingerprint: 'abcd1234' },
          expiresAt: expect.any(Number),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
      {
        TableName: 'keyplan-test',
        Item: expect.objectContaining({
          sk: 'EVENT#000000000004',
          sequence: 4,
          type: 'KeyEmailed',
          correlationId: 'attempt-1',
          detail: { keyId: 'key-1', fingerprint: 'abcd1234', reason: 'registration' },
        }),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    ]);
  });

  it('numbers from the count its claim knew, with no read, on a customer it created', async () => {
    await record('EMAIL_PENDING', fresh({ eventSeq: 0 }));

    expect(dynamoMock.commandCalls(GetCommand)).toHaveLength(0);
    const items = transactions()[0]!;
    expect(items[2]?.Update?.ConditionExpression).toBe(
      '#lease.#owner = :attemptId AND (attribute_not_exists(eventSeq) OR eventSeq = :seenSeq)',
    );
    expect(items[2]?.Update?.ExpressionAttributeValues).toMatchObject({ ':eventSeq': 1, ':seenSeq': 0 });
    expect(items.slice(3).map((item) => item.Put?.Item)).toEqual([
      expect.objectContaining({ sk: 'EVENT#000000000001', sequence: 1, type: 'KeyProvisioned' }),
    ]);
  });

  it('answers a lost lease when the registration or the customer moved on', async () => {
    dynamoMock.on(TransactWriteCommand).rejects(cancelled(2, undefined, 5));
    await expect(record()).rejects.toBeInstanceOf(RegistrationInProgressError);

    dynamoMock.on(TransactWriteCommand).rejects(cancelled(0, undefined, 5));
    await expect(record()).rejects.toBeInstanceOf(RegistrationInProgressError);
  });

  it('refuses, loudly, to record over a key item that exists', async () => {
    dynamoMock.on(TransactWriteCommand).rejects(cancelled(1, undefined, 5));

    const failure = await record().catch((error: unknown) => error);

    expect(failure).not.toBeInstanceOf(RegistrationInProgressError);
    expect((failure as Error).message).toMatch(/key key-1 of customer cust-1 has an item already/);
  });
});

describe('recordFailure', () => {
  it('writes the failure’s event with the customer going back, numbered after its count', async () => {
    const failed = event('RegistrationFailed', { registrationId: 'reg-1', tier: 'free', reason: 'association-rejected' });

    await table.recordFailure({
      registration: fresh(),
      reason: 'association-rejected',
      detail: 'refused',
      now: NOW,
      events: [failed],
    });

    const [registration, profile, outbox, ...rest] = transactions()[0]!;
    expect(rest).toEqual([]);
    expect(registration?.Update?.ExpressionAttributeValues).toMatchObject({ ':failed': 'FAILED' });
    expect(profile?.Update?.UpdateExpression).toMatch(/, eventSeq = :eventSeq REMOVE #lease, priorStatus$/);
    expect(profile?.Update?.ConditionExpression).toBe('#lease.#owner = :attemptId AND eventSeq = :seenSeq');
    expect(profile?.Update?.ExpressionAttributeValues).toMatchObject({ ':eventSeq': 3, ':seenSeq': 2 });
    expect(outbox?.Put?.Item).toMatchObject({
      pk: 'CUSTOMER#cust-1',
      sk: 'EVENT#000000000003',
      sequence: 3,
      type: 'RegistrationFailed',
      correlationId: 'attempt-1',
      detail: { registrationId: 'reg-1', tier: 'free', reason: 'association-rejected' },
    });
  });
});

describe('failUnclaimed', () => {
  /** The registration as its claim left it: queued, and counted on shard b when `counted`. */
  function queuedIn(counted: boolean) {
    const registration = fresh({ state: 'QUEUED', leaseExpiresAt: 0, ...(counted ? { shard: 'b', shardCounted: true } : {}) });
    dynamoMock.on(GetCommand, { Key: { pk: 'REG#reg-1', sk: 'REG' } }).resolves({ Item: { pk: 'REG#reg-1', sk: 'REG', ...registration } });
    return registration;
  }
  const shardCount = (items: ReturnType<typeof transactions>[number]) => items.find((item) => item.Update?.Key?.pk === 'SHARD#b')?.Update;

  it('gives back the key its claim counted on the shard, with the failure and the customer’s return', async () => {
    queuedIn(true);

    expect(await table.failUnclaimed('reg-1', { reason: 'invalid-message', detail: 'd' }, NOW)).toBe(true);

    const [registration, profile, shard, ...rest] = transactions()[0]!;
    expect(rest).toEqual([]);
    expect(registration?.Update?.ExpressionAttributeValues).toMatchObject({ ':failed': 'FAILED' });
    expect(profile?.Update?.Key).toEqual(PROFILE);
    // Unconditional: the registration's own condition lets one failure only give it back.
    expect(shard?.Update).toMatchObject({ UpdateExpression: 'SET updatedAt = :at ADD placedKeys :minusOne', ExpressionAttributeValues: { ':minusOne': -1 } });
    expect(shard?.Update?.ConditionExpression).toBeUndefined();
  });

  it('gives it back too when the customer moved on and the registration fails alone', async () => {
    queuedIn(true);
    dynamoMock.on(TransactWriteCommand).rejectsOnce(cancelled(1, undefined, 3)).resolves({});

    expect(await table.failUnclaimed('reg-1', { reason: 'invalid-message', detail: 'd' }, NOW)).toBe(true);

    expect(transactions()).toHaveLength(2);
    const [registration, shard, ...rest] = transactions()[1]!;
    expect(rest).toEqual([]);
    expect(registration?.Update?.Key).toEqual({ pk: 'REG#reg-1', sk: 'REG' });
    expect(shardCount([shard!])).toMatchObject({ ExpressionAttributeValues: { ':minusOne': -1 } });
  });

  it('counts nothing back for a registration that was never counted, nor for one already failed', async () => {
    queuedIn(false);
    expect(await table.failUnclaimed('reg-1', { reason: 'invalid-message', detail: 'd' }, NOW)).toBe(true);
    expect(transactions()[0]).toHaveLength(2);

    queuedIn(true);
    dynamoMock.on(TransactWriteCommand).rejects(cancelled(0, undefined, 3));
    expect(await table.failUnclaimed('reg-1', { reason: 'invalid-message', detail: 'd' }, NOW)).toBe(false);
    expect(transactions()).toHaveLength(2);
  });
});
