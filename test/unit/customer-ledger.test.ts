import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { CustomerCommitTable, CustomerLedgerTable, EVENT_RETENTION_DAYS } from '../../shared/aws/customer-ledger';
import { event } from '../../shared/core/events';
import type { CustomerKey } from '../../shared/core/model';
import type { AcquireRequest, Lease } from '../../shared/core/customer-record';
import { LeaseLostError, TransientAwsError } from '../../shared/errors';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const NOW_MS = NOW.getTime();
const LATER = NOW_MS + 60_000;
const TABLE = 'keyplan-test';
const PROFILE = { pk: 'CUSTOMER#cust-1', sk: 'PROFILE' };

/** The profile as the table holds it for a registered customer with one key. */
const profileItem = (overrides: Record<string, unknown> = {}) => ({
  ...PROFILE,
  customerId: 'cust-1',
  email: 'ada@example.com',
  tier: 'free',
  status: 'ACTIVE',
  registrationId: 'reg-1',
  keys: { 'key-1': 'ACTIVE' },
  emailedKeyId: 'key-1',
  version: 4,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-02-01T00:00:00.000Z',
  ...overrides,
});

const lease = (overrides: Partial<Lease> = {}): Lease => ({
  owner: 'other-op',
  operation: 'rotate',
  until: LATER,
  mustFinish: false,
  ...overrides,
});

const rotateRequest = (overrides: Partial<AcquireRequest> = {}): AcquireRequest => ({
  owner: 'op-1',
  until: LATER,
  intent: { operation: 'rotate', keyId: 'key-1', graceDays: 7 },
  mustFinish: true,
  ...overrides,
});

/** What DynamoDB answers when the condition fails: the item as it was, marshalled, if there is one. */
const conditionFailed = (item?: Record<string, unknown>) =>
  new ConditionalCheckFailedException({
    message: 'The conditional request failed',
    $metadata: { httpStatusCode: 400 },
    ...(item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {}),
  });

const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

describe('CustomerLedgerTable', () => {
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  const dynamoMock = mockClient(dynamo);
  const ledger = new CustomerLedgerTable({ client: dynamo, tableName: TABLE });
  const sentUpdate = () => dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input;
  const sentTransaction = () => dynamoMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];

  beforeEach(() => {
    dynamoMock.reset();
  });

  describe('acquire', () => {
    it('takes a free lease with one conditional write and answers the record as it is now', async () => {
      dynamoMock.on(UpdateCommand).resolves({ Attributes: profileItem({ eventSeq: 6 }) });

      const outcome = await ledger.acquire('cust-1', rotateRequest({ mustFinish: false }), NOW);

      expect(outcome).toEqual({
        kind: 'acquired',
        customer: {
          customerId: 'cust-1',
          email: 'ada@example.com',
          tier: 'free',
          status: 'ACTIVE',
          registrationId: 'reg-1',
          keys: { 'key-1': 'ACTIVE' },
          emailedKeyId: 'key-1',
          version: 5,
          // The count of its events as the holder read it: its commit numbers its own after it.
          eventSeq: 6,
          lease: { owner: 'op-1', operation: 'rotate', keyId: 'key-1', graceDays: 7, until: LATER, mustFinish: false },
        },
      });
      expect(dynamoMock.calls()).toHaveLength(1);
      expect(sentUpdate()).toEqual({
        TableName: TABLE,
        Key: PROFILE,
        UpdateExpression:
          'SET #lease = :lease, #version = if_not_exists(#version, :zero) + :one, updatedAt = :at, #keys = if_not_exists(#keys, :noKeys)',
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(#lease) OR (#lease.#until < :nowMs AND #lease.mustFinish = :false))',
        ExpressionAttributeNames: { '#lease': 'lease', '#until': 'until', '#version': 'version', '#keys': 'keys' },
        ExpressionAttributeValues: {
          ':lease': { owner: 'op-1', operation: 'rotate', until: LATER, mustFinish: false, keyId: 'key-1', graceDays: 7 },
          ':zero': 0,
          ':one': 1,
          ':at': NOW.toISOString(),
          ':noKeys': {},
          ':nowMs': NOW_MS,
          ':false': false,
        },
        ReturnValues: 'ALL_OLD',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      });
    });

    it('puts a must-finish lease into the REPAIR partition, due when it expires, and writes the status asked for', async () => {
      dynamoMock.on(UpdateCommand).resolves({ Attributes: profileItem() });

      const outcome = await ledger.acquire(
        'cust-1',
        rotateRequest({ intent: { operation: 'revoke' }, setStatus: 'REVOKED', status: ['ACTIVE', 'REVOKED'] }),
        NOW,
      );

      expect(outcome).toMatchObject({ kind: 'acquired', customer: { status: 'REVOKED', lease: { mustFinish: true } } });
      const input = sentUpdate();
      expect(input?.UpdateExpression).toContain('#status = :setStatus');
      expect(input?.UpdateExpression).toContain('dueType = :repair, dueAt = :dueAt');
      expect(input?.ExpressionAttributeValues).toMatchObject({
        ':setStatus': 'REVOKED',
        ':repair': 'REPAIR',
        ':dueAt': new Date(LATER).toISOString(),
        ':status0': 'ACTIVE',
        ':status1': 'REVOKED',
      });
      expect(input?.ConditionExpression).toContain(' AND #status IN (:status0, :status1)');
      expect(input?.ExpressionAttributeNames).toMatchObject({ '#status': 'status' });
    });

    it('conditions on the key state in the customer list, the key id through a placeholder', async () => {
      dynamoMock.on(UpdateCommand).resolves({ Attributes: profileItem() });

      await ledger.acquire('cust-1', rotateRequest({ key: { keyId: 'key-1', states: ['ACTIVE', 'RETIRING'] } }), NOW);

      const input = sentUpdate();
      expect(input?.ConditionExpression).toMatch(/ AND #keys\.#k IN \(:keyState0, :keyState1\)$/);
      expect(input?.ExpressionAttributeNames).toMatchObject({ '#keys': 'keys', '#k': 'key-1' });
      expect(input?.ExpressionAttributeValues).toMatchObject({ ':keyState0': 'ACTIVE', ':keyState1': 'RETIRING' });
    });

    it('for the sweep, takes over the expired lease it listed, by its owner, and answers it as interrupted', async () => {
      const dead = lease({ owner: 'dead-op', until: NOW_MS - 1, mustFinish: true, keyId: 'key-1', graceDays: 7 });
      dynamoMock.on(UpdateCommand).resolves({ Attributes: profileItem({ lease: dead, dueType: 'REPAIR' }) });

      const outcome = await ledger.acquire(
        'cust-1',
        rotateRequest({ owner: 'sweep-1', intent: { operation: 'rotate', keyId: 'key-1', graceDays: 7 }, takeOverInterrupted: { owner: 'dead-op' } }),
        NOW,
      );

      expect(outcome).toMatchObject({ kind: 'acquired', interrupted: dead, customer: { lease: { owner: 'sweep-1' } } });
      expect(sentUpdate()?.ConditionExpression).toBe(
        'attribute_exists(pk) AND (#lease.#owner = :listed AND #lease.#until < :nowMs AND attribute_not_exists(#lease.#placed))',
      );
      expect(sentUpdate()?.ExpressionAttributeValues).toMatchObject({ ':listed': 'dead-op' });
      expect(sentUpdate()?.ExpressionAttributeValues).not.toHaveProperty(':false');
    });

    it('for the sweep, takes over a drain move’s lease only with the shard count it listed, which it carries on', async () => {
      const dead = lease({ owner: 'dead-op', until: NOW_MS - 1, mustFinish: true, keyId: 'key-1', toShard: 'b', placed: 'b' });
      dynamoMock.on(UpdateCommand).resolves({ Attributes: profileItem({ lease: dead, dueType: 'REPAIR' }) });

      await ledger.acquire(
        'cust-1',
        rotateRequest({ owner: 'sweep-1', intent: { operation: 'rotate', keyId: 'key-1', toShard: 'b', placed: 'b' }, takeOverInterrupted: { owner: 'dead-op' } }),
        NOW,
      );

      expect(sentUpdate()?.ConditionExpression).toBe(
        'attribute_exists(pk) AND (#lease.#owner = :listed AND #lease.#until < :nowMs AND #lease.#placed = :placed)',
      );
      expect(sentUpdate()?.ExpressionAttributeValues).toMatchObject({ ':placed': 'b', ':lease': { placed: 'b', toShard: 'b', owner: 'sweep-1' } });
    });

    it('for the sweep, takes a customer listed with no lease only while it still has none', async () => {
      dynamoMock.on(UpdateCommand).resolves({ Attributes: profileItem({ dueType: 'REPAIR' }) });

      await ledger.acquire('cust-1', rotateRequest({ owner: 'sweep-1', takeOverInterrupted: { owner: undefined } }), NOW);

      expect(sentUpdate()?.ConditionExpression).toBe('attribute_exists(pk) AND attribute_not_exists(#lease)');
    });

    it('refuses the sweep a lease that changed since it was listed, even one expired with work to finish', async () => {
      const other = lease({ owner: 'other-op', until: NOW_MS - 1, mustFinish: true, operation: 'revoke' });
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem({ lease: other })));

      expect(await ledger.acquire('cust-1', rotateRequest({ takeOverInterrupted: { owner: 'dead-op' } }), NOW)).toMatchObject({
        kind: 'refused',
      });
    });

    it('does not call an expired lease that had nothing to finish interrupted', async () => {
      dynamoMock.on(UpdateCommand).resolves({ Attributes: profileItem({ lease: lease({ until: NOW_MS - 1 }) }) });

      const outcome = await ledger.acquire('cust-1', rotateRequest(), NOW);

      expect(outcome.kind).toBe('acquired');
      expect(outcome).not.toHaveProperty('interrupted');
    });

    it('answers busy with the holder while another lease is live', async () => {
      const holder = lease({ owner: 'tier-op', operation: 'change-tier', tier: 'pro' });
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem({ lease: holder })));

      expect(await ledger.acquire('cust-1', rotateRequest(), NOW)).toEqual({ kind: 'busy', holder });
    });

    it('answers busy while an expired lease still has work to finish, unless the sweep asks', async () => {
      const holder = lease({ until: NOW_MS - 1, mustFinish: true });
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem({ lease: holder })));

      expect(await ledger.acquire('cust-1', rotateRequest(), NOW)).toEqual({ kind: 'busy', holder });
      // The same lease is no reason to refuse the sweep: a condition that failed for it failed on the state.
      expect(await ledger.acquire('cust-1', rotateRequest({ takeOverInterrupted: { owner: holder.owner }, status: ['ACTIVE'] }), NOW)).toMatchObject({
        kind: 'refused',
      });
    });

    it('answers not-found when there is no profile', async () => {
      dynamoMock.on(UpdateCommand).rejects(conditionFailed());

      expect(await ledger.acquire('cust-1', rotateRequest(), NOW)).toEqual({ kind: 'not-found' });
    });

    it('answers refused with the record when the status is not one asked for', async () => {
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem({ status: 'REVOKED' })));

      const outcome = await ledger.acquire('cust-1', rotateRequest({ status: ['ACTIVE'] }), NOW);

      expect(outcome).toMatchObject({ kind: 'refused', customer: { status: 'REVOKED', version: 4 } });
      expect(outcome).not.toHaveProperty('customer.lease');
    });

    it('answers refused when the key is not in a state asked for, even with an expired lease left on the record', async () => {
      const expired = lease({ until: NOW_MS - 1 });
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem({ keys: { 'key-1': 'RETIRING' }, lease: expired })));

      const outcome = await ledger.acquire('cust-1', rotateRequest({ key: { keyId: 'key-1', states: ['ACTIVE'] } }), NOW);

      expect(outcome).toMatchObject({ kind: 'refused', customer: { keys: { 'key-1': 'RETIRING' }, lease: expired } });
    });

    it('reads a customer only reserved by its first registration: no email, no tier yet', async () => {
      dynamoMock
        .on(UpdateCommand)
        .rejects(conditionFailed({ ...PROFILE, customerId: 'cust-1', status: 'PENDING', registrationId: 'reg-1', keys: {}, version: 1 }));

      expect(await ledger.acquire('cust-1', rotateRequest({ status: ['ACTIVE'] }), NOW)).toEqual({
        kind: 'refused',
        customer: { customerId: 'cust-1', email: '', tier: '', status: 'PENDING', registrationId: 'reg-1', keys: {}, version: 1, eventSeq: 0 },
      });
    });

    it('translates DynamoDB being unavailable', async () => {
      dynamoMock.on(UpdateCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));

      await expect(ledger.acquire('cust-1', rotateRequest(), NOW)).rejects.toBeInstanceOf(TransientAwsError);
    });

    it('refuses an empty precondition list rather than send an expression DynamoDB rejects', async () => {
      await expect(ledger.acquire('cust-1', rotateRequest({ status: [] }), NOW)).rejects.toThrow(/IN list/);
      expect(dynamoMock.calls()).toHaveLength(0);
    });
  });

  describe('commit', () => {
    const successor: CustomerKey = {
      customerId: 'cust-1',
      keyId: 'key-2',
      state: 'ACTIVE',
      usagePlanId: 'plan-free',
      tier: 'free',
      fingerprint: 'abcd1234',
      registrationId: 'reg-1',
      createdAt: NOW.toISOString(),
      rotateAt: '2026-05-30T12:00:00.000Z',
      generation: 2,
    };

    it('writes the profile, the key items and the registration in one transaction that releases the lease', async () => {
      dynamoMock.on(TransactWriteCommand).resolves({});

      await ledger.commit(
        'cust-1',
        'op-1',
        {
          tier: { from: 'free', to: 'pro', cause: 'billing' },
          tierEventAt: '2026-03-01T11:59:00.000Z',
          keys: { 'key-1': 'RETIRING', 'key-2': 'ACTIVE', 'key-0': null },
          emailedKeyId: 'key-2',
          items: [
            { kind: 'put', key: successor, due: { type: 'ROTATE', at: successor.rotateAt ?? '' }, replaces: 'key-1' },
            {
              kind: 'update',
              keyId: 'key-1',
              set: { state: 'RETIRING', retireAt: '2026-03-08T12:00:00.000Z', successorKeyId: 'key-2' },
              due: { type: 'RETIRE', at: '2026-03-08T12:00:00.000Z' },
            },
            { kind: 'update', keyId: 'key-0', set: { state: 'DELETED' }, due: null },
          ],
          registration: { registrationId: 'reg-1', state: 'ACTIVE', attemptId: 'attempt-1' },
        },
        NOW,
      );

      expect(dynamoMock.calls()).toHaveLength(1);
      const [profile, put, retiring, deleted, registration] = sentTransaction();
      expect(profile?.Update).toEqual({
        TableName: TABLE,
        Key: PROFILE,
        UpdateExpression:
          'SET #version = if_not_exists(#version, :zero) + :one, updatedAt = :at, tier = :tier, ' +
          'tierHistory = list_append(if_not_exists(tierHistory, :noHistory), :tierChange), tierEventAt = :tierEventAt, ' +
          'emailedKeyId = :emailedKeyId, #keys.#k0 = :k0, #keys.#k1 = :k1 REMOVE #lease, dueType, dueAt, #keys.#k2',
        ConditionExpression: '#lease.#owner = :owner',
        ExpressionAttributeNames: {
          '#lease': 'lease',
          '#owner': 'owner',
          '#version': 'version',
          '#keys': 'keys',
          '#k0': 'key-1',
          '#k1': 'key-2',
          '#k2': 'key-0',
        },
        ExpressionAttributeValues: {
          ':owner': 'op-1',
          ':zero': 0,
          ':one': 1,
          ':at': NOW.toISOString(),
          ':tier': 'pro',
          ':noHistory': [],
          ':tierChange': [{ from: 'free', to: 'pro', requestId: 'billing', at: NOW.toISOString() }],
          ':tierEventAt': '2026-03-01T11:59:00.000Z',
          ':emailedKeyId': 'key-2',
          ':k0': 'RETIRING',
          ':k1': 'ACTIVE',
        },
      });
      expect(put?.Put).toEqual({
        TableName: TABLE,
        Item: {
          pk: 'CUSTOMER#cust-1',
          sk: 'KEY#key-2',
          ...successor,
          predecessorKeyId: 'key-1',
          dueType: 'ROTATE',
          dueAt: successor.rotateAt,
        },
      });
      expect(retiring?.Update).toEqual({
        TableName: TABLE,
        Key: { pk: 'CUSTOMER#cust-1', sk: 'KEY#key-1' },
        UpdateExpression:
          'SET updatedAt = :at, #state = :state, #retireAt = :retireAt, #successorKeyId = :successorKeyId, dueType = :dueType, dueAt = :dueAt REMOVE rotation, needsRepair',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#state': 'state', '#retireAt': 'retireAt', '#successorKeyId': 'successorKeyId' },
        ExpressionAttributeValues: {
          ':at': NOW.toISOString(),
          ':state': 'RETIRING',
          ':retireAt': '2026-03-08T12:00:00.000Z',
          ':successorKeyId': 'key-2',
          ':dueType': 'RETIRE',
          ':dueAt': '2026-03-08T12:00:00.000Z',
        },
      });
      expect(deleted?.Update?.UpdateExpression).toBe('SET updatedAt = :at, #state = :state REMOVE rotation, needsRepair, dueType, dueAt');
      expect(registration?.Update).toEqual({
        TableName: TABLE,
        Key: { pk: 'REG#reg-1', sk: 'REG' },
        UpdateExpression: 'SET #state = :state, leaseExpiresAt = :zero, updatedAt = :at REMOVE dueType, dueAt, expiresAt',
        ConditionExpression: 'attemptId = :attemptId',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':state': 'ACTIVE', ':zero': 0, ':at': NOW.toISOString(), ':attemptId': 'attempt-1' },
      });
    });

    it('records a revocation with its time, and the registration whatever attempt holds it', async () => {
      dynamoMock.on(TransactWriteCommand).resolves({});

      await ledger.commit(
        'cust-1',
        'op-1',
        {
          status: 'REVOKED',
          items: [{ kind: 'update', keyId: 'key-1', set: { state: 'DISABLED' } }],
          registration: { registrationId: 'reg-1', state: 'REVOKED' },
        },
        NOW,
      );

      const [profile, key, registration] = sentTransaction();
      expect(profile?.Update?.UpdateExpression).toBe(
        'SET #version = if_not_exists(#version, :zero) + :one, updatedAt = :at, #status = :status, revokedAt = :at REMOVE #lease, dueType, dueAt',
      );
      expect(profile?.Update?.ExpressionAttributeNames).toEqual({
        '#lease': 'lease',
        '#owner': 'owner',
        '#version': 'version',
        '#status': 'status',
      });
      // Without a due, the key keeps its place in the index.
      expect(key?.Update?.UpdateExpression).toBe('SET updatedAt = :at, #state = :state REMOVE rotation, needsRepair');
      expect(registration?.Update?.ConditionExpression).toBe('attribute_exists(pk)');
      expect(registration?.Update?.ExpressionAttributeValues).not.toHaveProperty(':attemptId');
    });

    it('writes each event as the customer’s next EVENT# item in the same transaction, numbered after the count the holder read', async () => {
      dynamoMock.on(TransactWriteCommand).resolves({});

      await ledger.commit(
        'cust-1',
        'op-1',
        {
          keys: { 'key-1': 'DISABLED' },
          items: [{ kind: 'update', keyId: 'key-1', set: { state: 'DISABLED' } }],
          events: [
            event('CustomerRevoked', { keyIds: ['key-1'] }),
            event('KeyDisabled', { keyId: 'key-1', reason: 'revoked', shard: undefined }),
          ],
        },
        NOW,
        3,
      );

      expect(dynamoMock.calls()).toHaveLength(1);
      const [profile, key, ...outbox] = sentTransaction();
      // The count moves with the change, and only if nobody numbered events since the holder read it.
      expect(profile?.Update?.UpdateExpression).toBe(
        'SET #version = if_not_exists(#version, :zero) + :one, updatedAt = :at, #keys.#k0 = :k0, eventSeq = :eventSeq REMOVE #lease, dueType, dueAt',
      );
      expect(profile?.Update?.ConditionExpression).toBe('#lease.#owner = :owner AND eventSeq = :seenSeq');
      expect(profile?.Update?.ExpressionAttributeValues).toMatchObject({ ':eventSeq': 5, ':seenSeq': 3 });
      expect(key?.Update?.Key).toEqual({ pk: 'CUSTOMER#cust-1', sk: 'KEY#key-1' });
      const expiresAt = NOW_MS / 1000 + EVENT_RETENTION_DAYS * 86_400;
      expect(outbox).toEqual([
        {
          Put: {
            TableName: TABLE,
            Item: {
              pk: 'CUSTOMER#cust-1',
              sk: 'EVENT#000000000004',
              eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
              customerId: 'cust-1',
              sequence: 4,
              type: 'CustomerRevoked',
              time: NOW.toISOString(),
              correlationId: 'op-1',
              detail: { keyIds: ['key-1'] },
              expiresAt,
            },
            // A number is never written twice.
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Put: {
            TableName: TABLE,
            Item: {
              pk: 'CUSTOMER#cust-1',
              sk: 'EVENT#000000000005',
              eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
              customerId: 'cust-1',
              sequence: 5,
              type: 'KeyDisabled',
              time: NOW.toISOString(),
              correlationId: 'op-1',
              // A detail left undefined is left out, not written as null.
              detail: { keyId: 'key-1', reason: 'revoked' },
              expiresAt,
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
      ]);
      expect(outbox[0]?.Put?.Item?.eventId).not.toBe(outbox[1]?.Put?.Item?.eventId);
    });

    it('numbers a customer’s first events from 1, on a profile written before the count existed too', async () => {
      dynamoMock.on(TransactWriteCommand).resolves({});

      await ledger.commit('cust-1', 'op-1', { events: [event('KeyMissing', { keyId: 'key-1', shard: 'home' })] }, NOW);

      const [profile, outbox] = sentTransaction();
      expect(profile?.Update?.ConditionExpression).toBe(
        '#lease.#owner = :owner AND (attribute_not_exists(eventSeq) OR eventSeq = :seenSeq)',
      );
      expect(profile?.Update?.ExpressionAttributeValues).toMatchObject({ ':eventSeq': 1, ':seenSeq': 0 });
      expect(outbox?.Put?.Item).toMatchObject({ sk: 'EVENT#000000000001', sequence: 1, type: 'KeyMissing', correlationId: 'op-1' });
    });

    it('writes no event and leaves the count alone for a change that states none', async () => {
      dynamoMock.on(UpdateCommand).resolves({});

      await ledger.commit('cust-1', 'op-1', { tierEventAt: NOW.toISOString() }, NOW, 5);

      expect(dynamoMock.commandCalls(TransactWriteCommand)).toHaveLength(0);
      const update = dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(update?.UpdateExpression).not.toContain('eventSeq');
      expect(update?.ConditionExpression).toBe('#lease.#owner = :owner');
      expect(update?.ExpressionAttributeValues).not.toHaveProperty(':seenSeq');
    });

    it('throws LeaseLostError, having written no event, when the count moved since the holder read it', async () => {
      dynamoMock.on(TransactWriteCommand).rejects(cancelled('ConditionalCheckFailed', 'None'));

      const commit = ledger.commit('cust-1', 'op-1', { events: [event('KeyMissing', { keyId: 'key-1' })] }, NOW, 2);

      await expect(commit).rejects.toBeInstanceOf(LeaseLostError);
    });

    it('writes the profile alone with one conditional UpdateItem, no transaction', async () => {
      dynamoMock.on(UpdateCommand).resolves({});

      await ledger.commit('cust-1', 'op-1', {}, NOW);

      expect(dynamoMock.commandCalls(TransactWriteCommand)).toHaveLength(0);
      const update = dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(update?.UpdateExpression).toBe(
        'SET #version = if_not_exists(#version, :zero) + :one, updatedAt = :at REMOVE #lease, dueType, dueAt',
      );
      expect(update?.ConditionExpression).toContain('#lease.#owner = :owner');
    });

    it('throws LeaseLostError when a profile-only commit finds the lease another’s', async () => {
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem()));

      await expect(ledger.commit('cust-1', 'op-1', { tierEventAt: NOW.toISOString() }, NOW)).rejects.toBeInstanceOf(
        LeaseLostError,
      );
    });

    it('throws LeaseLostError when the lease is no longer the owner’s', async () => {
      dynamoMock.on(TransactWriteCommand).rejects(cancelled('ConditionalCheckFailed', 'None'));

      const commit = ledger.commit('cust-1', 'op-1', { keys: { 'key-1': 'DISABLED' } }, NOW);

      await expect(commit).rejects.toBeInstanceOf(LeaseLostError);
    });

    it('passes on a transaction that failed on something else, translating a conflict into retry-later', async () => {
      const change = { items: [{ kind: 'update' as const, keyId: 'key-9', set: { state: 'DISABLED' as const } }] };
      dynamoMock
        .on(TransactWriteCommand)
        .rejectsOnce(cancelled('None', 'ConditionalCheckFailed'))
        .rejectsOnce(cancelled('TransactionConflict', 'None'));

      await expect(ledger.commit('cust-1', 'op-1', change, NOW)).rejects.toBeInstanceOf(TransactionCanceledException);
      await expect(ledger.commit('cust-1', 'op-1', change, NOW)).rejects.toBeInstanceOf(TransientAwsError);
    });

    it('refuses to write another customer’s key into this customer', async () => {
      const change = { items: [{ kind: 'put' as const, key: { ...successor, customerId: 'cust-2' } }] };

      await expect(ledger.commit('cust-1', 'op-1', change, NOW)).rejects.toThrow(/belongs to customer cust-2/);
      expect(dynamoMock.calls()).toHaveLength(0);
    });
  });

  describe('release, abandon, renew', () => {
    it('release removes the lease and the REPAIR place, only the owner’s; a lease gone already is fine', async () => {
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem()));

      await ledger.release('cust-1', 'op-1');

      expect(sentUpdate()).toEqual({
        TableName: TABLE,
        Key: PROFILE,
        UpdateExpression: 'REMOVE #lease, dueType, dueAt',
        ConditionExpression: '#lease.#owner = :owner',
        ExpressionAttributeNames: { '#lease': 'lease', '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': 'op-1' },
      });
    });

    it('abandon expires the lease at once, must-finish, due for the sweep now', async () => {
      dynamoMock.on(UpdateCommand).resolves({});

      await ledger.abandon('cust-1', 'op-1', NOW);

      expect(sentUpdate()).toMatchObject({
        UpdateExpression: 'SET #lease.#until = :nowMs, #lease.mustFinish = :true, dueType = :repair, dueAt = :at',
        ConditionExpression: '#lease.#owner = :owner',
        ExpressionAttributeValues: { ':nowMs': NOW_MS, ':true': true, ':repair': 'REPAIR', ':at': NOW.toISOString(), ':owner': 'op-1' },
      });
      dynamoMock.on(UpdateCommand).rejects(conditionFailed(profileItem()));
      await expect(ledger.abandon('cust-1', 'op-1', NOW)).resolves.toBeUndefined();
    });

    it('renew extends the owner’s lease and its REPAIR time, false when it is no longer the owner’s', async () => {
      dynamoMock.on(UpdateCommand).resolvesOnce({}).rejectsOnce(conditionFailed(profileItem()));

      expect(await ledger.renew('cust-1', 'op-1', LATER + 60_000, NOW)).toBe(true);
      expect(await ledger.renew('cust-1', 'op-1', LATER + 60_000, NOW)).toBe(false);
      expect(sentUpdate()).toMatchObject({
        UpdateExpression: 'SET #lease.#until = :until, dueAt = :dueAt',
        ConditionExpression: '#lease.#owner = :owner',
        ExpressionAttributeValues: { ':until': LATER + 60_000, ':dueAt': new Date(LATER + 60_000).toISOString() },
      });
    });

    it('translates DynamoDB being unavailable instead of calling it a lost lease', async () => {
      dynamoMock.on(UpdateCommand).rejects(Object.assign(new Error('down'), { name: 'InternalServerError' }));

      await expect(ledger.renew('cust-1', 'op-1', LATER, NOW)).rejects.toBeInstanceOf(TransientAwsError);
    });
  });

  describe('place (a drain move’s room in its target)', () => {
    it('counts one more key on the shard under the claim’s condition, noted on the holder’s lease, at once', async () => {
      dynamoMock.on(TransactWriteCommand).resolves({});

      expect(await ledger.place('cust-1', 'op-1', { shardId: 'b', highWaterKeys: 80 }, NOW)).toBe('placed');

      const [profile, shard, ...rest] = sentTransaction();
      expect(rest).toEqual([]);
      expect(profile?.Update).toMatchObject({
        Key: PROFILE,
        UpdateExpression: 'SET #lease.#placed = :placed, updatedAt = :at',
        ConditionExpression: '#lease.#owner = :owner',
        ExpressionAttributeValues: { ':placed': 'b', ':owner': 'op-1' },
      });
      expect(shard?.Update).toMatchObject({
        Key: { pk: 'SHARD#b', sk: 'SHARD' },
        UpdateExpression: 'SET updatedAt = :at ADD placedKeys :one',
        ConditionExpression:
          '(attribute_not_exists(placedKeys) OR placedKeys < :mark) AND ' +
          '(attribute_not_exists(inventoryKeys) OR inventoryKeys < :mark) AND ' +
          '(attribute_not_exists(#state) OR #state = :accepting)',
        ExpressionAttributeValues: { ':mark': 80, ':accepting': 'accepting', ':one': 1 },
      });
    });

    it('answers shard-full when the shard is at its mark or draining, lost when the lease is another’s', async () => {
      dynamoMock.on(TransactWriteCommand).rejectsOnce(cancelled('None', 'ConditionalCheckFailed')).rejectsOnce(cancelled('ConditionalCheckFailed', 'None'));

      expect(await ledger.place('cust-1', 'op-1', { shardId: 'b', highWaterKeys: 80 }, NOW)).toBe('shard-full');
      expect(await ledger.place('cust-1', 'op-1', { shardId: 'b', highWaterKeys: 80 }, NOW)).toBe('lost');
    });

    it('gives the count back with the release of a lease that took it, only the owner’s', async () => {
      dynamoMock.on(TransactWriteCommand).resolvesOnce({}).rejectsOnce(cancelled('ConditionalCheckFailed', 'None'));

      await ledger.release('cust-1', 'op-1', 'b');
      await expect(ledger.release('cust-1', 'op-1', 'b')).resolves.toBeUndefined();

      const [profile, shard] = sentTransaction();
      expect(profile?.Update).toMatchObject({ UpdateExpression: 'REMOVE #lease, dueType, dueAt', ConditionExpression: '#lease.#owner = :owner' });
      expect(shard?.Update).toMatchObject({ Key: { pk: 'SHARD#b', sk: 'SHARD' }, UpdateExpression: 'SET updatedAt = :at ADD placedKeys :minusOne' });
      expect(shard?.Update?.ConditionExpression).toBeUndefined();
      expect(shard?.Update?.ExpressionAttributeValues).toMatchObject({ ':minusOne': -1 });
    });
  });

  describe('findInterrupted', () => {
    it('reads the REPAIR partition up to now, oldest first, with each lease’s intent, at most `limit`', async () => {
      const repairItem = (customerId: string, intent: Partial<Lease>) => ({
        ...profileItem({ pk: `CUSTOMER#${customerId}`, customerId }),
        lease: lease({ owner: `op-${customerId}`, until: NOW_MS - 1000, mustFinish: true, ...intent }),
        dueType: 'REPAIR',
        dueAt: new Date(NOW_MS - 1000).toISOString(),
      });
      dynamoMock
        .on(QueryCommand)
        .resolvesOnce({
          Items: [repairItem('cust-1', { operation: 'rotate', keyId: 'key-1', graceDays: 0 })],
          LastEvaluatedKey: { pk: 'x' },
        })
        .resolvesOnce({
          Items: [repairItem('cust-2', { operation: 'change-tier', tier: 'pro' }), repairItem('cust-3', { operation: 'revoke' })],
        });

      const found = await ledger.findInterrupted(NOW, 2);

      expect(found).toEqual([
        { customerId: 'cust-1', owner: 'op-cust-1', intent: { operation: 'rotate', keyId: 'key-1', graceDays: 0 } },
        { customerId: 'cust-2', owner: 'op-cust-2', intent: { operation: 'change-tier', tier: 'pro' } },
      ]);
      expect(dynamoMock.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
        TableName: TABLE,
        IndexName: 'due',
        KeyConditionExpression: 'dueType = :repair AND dueAt <= :now',
        ExpressionAttributeValues: { ':repair': 'REPAIR', ':now': NOW.toISOString() },
        Limit: 2,
      });
    });

    it('answers a customer whose lease is gone with no owner and no intent', async () => {
      dynamoMock.on(QueryCommand).resolves({ Items: [{ ...profileItem(), dueType: 'REPAIR', dueAt: NOW.toISOString() }] });

      expect(await ledger.findInterrupted(NOW, 10)).toEqual([{ customerId: 'cust-1', owner: undefined, intent: undefined }]);
    });
  });
});

describe('CustomerCommitTable (the registration saga’s commit alone)', () => {
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  const dynamoMock = mockClient(dynamo);
  const saga = new CustomerCommitTable({ client: dynamo, tableName: TABLE });

  beforeEach(() => {
    dynamoMock.reset();
    dynamoMock.on(UpdateCommand).resolves({});
    dynamoMock.on(TransactWriteCommand).resolves({});
  });

  it('commits the saga’s own change: the settled email, the registration and the events, with the lease’s release', async () => {
    await saga.commit(
      'cust-1',
      'attempt-1',
      {
        emailedKeyId: 'key-1',
        registration: { registrationId: 'reg-1', state: 'ACTIVE', attemptId: 'attempt-1' },
        events: [event('KeyEmailed', { keyId: 'key-1', fingerprint: 'f', reason: 'registration' })],
      },
      NOW,
      2,
    );

    const [profile, registration, outbox, ...rest] = dynamoMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(rest).toEqual([]);
    expect(profile?.Update?.UpdateExpression).toMatch(/emailedKeyId = :emailedKeyId.* REMOVE #lease, dueType, dueAt$/);
    expect(registration?.Update?.Key).toEqual({ pk: 'REG#reg-1', sk: 'REG' });
    expect(outbox?.Put?.Item).toMatchObject({ sequence: 3, type: 'KeyEmailed' });
  });

  it.each([
    ['a status', { status: 'REVOKED' as const }],
    ['a tier', { tier: { from: 'free', to: 'pro', cause: 'r' } }],
    ['a billing event’s time', { tierEventAt: NOW.toISOString() }],
    ['a shard', { shard: 'b' }],
    ['the keys’ shards', { keyShards: {} }],
    ['the key list', { keys: { 'key-1': 'RETIRING' as const } }],
    ['a key item', { items: [{ kind: 'update' as const, keyId: 'key-1', set: { state: 'RETIRING' as const } }] }],
    ['a shard’s count', { placedKeys: { b: 1 } }],
  ])('refuses %s, which only CustomerLedgerTable writes, and writes nothing', async (_what, change) => {
    await expect(saga.commit('cust-1', 'op-1', change, NOW)).rejects.toThrow(/the registration saga’s commit writes its settled email, registration and events only/);

    expect(dynamoMock.calls()).toHaveLength(0);
  });
});
