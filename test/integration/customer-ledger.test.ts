import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, type LocalStack } from '../../infra/local/bootstrap';
import { CustomerLedgerTable } from '../../shared/aws/customer-ledger';
import { RegistrationTable } from '../../shared/aws/registration-table';
import { keyItemKey, profileKey, regKey, shardKey } from '../../shared/aws/table-keys';
import { event } from '../../shared/core/events';
import type { CustomerKey } from '../../shared/core/model';
import type { AcquireRequest } from '../../shared/core/customer-record';
import { CustomerBusyError, LeaseLostError, RegistrationInProgressError } from '../../shared/errors';
import { hashRegistrationRequest, type Registration } from '../../shared/core/registration';
import { clientsAt, type TestClients } from '../support/aws-test-clients';

// The real expressions against the emulator: every condition, nested path and if_not_exists the
// ledger and the registration table write must be accepted, and mean what the unit tests assume.
let stack: LocalStack;
let aws: TestClients;
let ledger: CustomerLedgerTable;
let registrations: RegistrationTable;
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;

/** A fixed clock, under the test's control. */
const T0 = new Date('2031-01-01T00:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const ms = (seconds: number) => at(seconds).getTime();

beforeAll(async () => {
  // A table of its own: findInterrupted reads a whole partition of the due index.
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-ledger') });
  aws = clientsAt(stack.endpoint, { region: stack.region });
  ledger = new CustomerLedgerTable({ client: aws.dynamo, tableName: stack.tableName });
  registrations = new RegistrationTable({ client: aws.dynamo, tableName: stack.tableName, retentionDays: 30 });
});

function aRegistration(customerId: string, overrides: Partial<Registration> = {}): Registration {
  const request = { customerId, email: `${customerId}@example.com`, tier: 'basic' };
  return {
    ...request,
    registrationId: `reg-${customerId}`,
    payloadHash: hashRegistrationRequest(request),
    usagePlanId: 'plan-basic',
    state: 'PENDING',
    attemptId: 'attempt-1',
    leaseExpiresAt: ms(60),
    createdAt: T0.toISOString(),
    updatedAt: T0.toISOString(),
    ...overrides,
  };
}

const profileOf = async (customerId: string) =>
  (await aws.dynamo.send(new GetCommand({ TableName: stack.tableName, Key: profileKey(customerId), ConsistentRead: true })))
    .Item;
const keyItemOf = async (customerId: string, keyId: string) =>
  (await aws.dynamo.send(new GetCommand({ TableName: stack.tableName, Key: keyItemKey(customerId, keyId), ConsistentRead: true })))
    .Item;
const registrationItemOf = async (registrationId: string) =>
  (await aws.dynamo.send(new GetCommand({ TableName: stack.tableName, Key: regKey(registrationId), ConsistentRead: true }))).Item;

/** The registration's record step: its key, ACTIVE (emailed) unless the email is owed, with its events. */
const recordKey = (registration: Registration, keyId: string, now: Date, state: 'ACTIVE' | 'EMAIL_PENDING' = 'ACTIVE') =>
  registrations.recordKey({
    registration,
    keyId,
    fingerprint: 'abcd1234',
    state,
    rotateAt: at(90 * 86_400).toISOString(),
    now,
    events: [
      event('KeyProvisioned', { keyId, registrationId: registration.registrationId, tier: registration.tier, fingerprint: 'abcd1234' }),
      ...(state === 'ACTIVE' ? [event('KeyEmailed', { keyId, fingerprint: 'abcd1234', reason: 'registration' })] : []),
    ],
  });

/** A customer registered through the saga's own writes, with key `key-1`. */
async function registeredCustomer(overrides: Partial<Registration> = {}) {
  const customerId = unique('cust');
  const registration = aRegistration(customerId, overrides);
  expect(await registrations.claim(registration, T0)).toMatchObject({ kind: 'claimed' });
  await recordKey(registration, 'key-1', at(1));
  return { customerId, registration };
}

const leaseFor = (owner: string, overrides: Partial<AcquireRequest> = {}): AcquireRequest => ({
  owner,
  until: ms(120),
  intent: { operation: 'rotate', keyId: 'key-1', graceDays: 7 },
  mustFinish: true,
  ...overrides,
});

describe('the registration claim reserves the customer', () => {
  it('reserves a new customer PENDING with the attempt’s must-finish lease; readers see no customer yet', async () => {
    const customerId = unique('cust');
    const registration = aRegistration(customerId);

    // A new profile: no events yet, and the attempt knows it without a read.
    expect(await registrations.claim(registration, T0)).toEqual({ kind: 'claimed', registration: { ...registration, eventSeq: 0 } });

    expect(await profileOf(customerId)).toEqual({
      ...profileKey(customerId),
      customerId,
      registrationId: registration.registrationId,
      status: 'PENDING',
      priorStatus: 'UNREGISTERED',
      createdAt: T0.toISOString(),
      updatedAt: T0.toISOString(),
      keys: {},
      version: 1,
      lease: { owner: 'attempt-1', operation: 'register', until: ms(60), mustFinish: true },
    });
    expect(await registrations.getCustomer(customerId)).toBeUndefined();
  });

  it('answers customer-taken to another registration, and the recorded registration to a replay', async () => {
    const customerId = unique('cust');
    const first = aRegistration(customerId);
    await registrations.claim(first, T0);

    const other = await registrations.claim(aRegistration(customerId, { registrationId: unique('reg') }), at(1));
    const replay = await registrations.claim({ ...first, attemptId: 'attempt-2' }, at(1));

    expect(other).toEqual({ kind: 'customer-taken' });
    expect(replay).toEqual({ kind: 'exists', registration: first });
    expect(await profileOf(customerId)).toMatchObject({ registrationId: first.registrationId, version: 1 });
  });

  it('records the key: ACTIVE, email and tier, the key listed and emailed, the lease released', async () => {
    const { customerId, registration } = await registeredCustomer();

    expect(await profileOf(customerId)).toEqual({
      ...profileKey(customerId),
      customerId,
      registrationId: registration.registrationId,
      email: registration.email,
      tier: 'basic',
      status: 'ACTIVE',
      createdAt: T0.toISOString(),
      updatedAt: at(1).toISOString(),
      keys: { 'key-1': 'ACTIVE' },
      emailedKeyId: 'key-1',
      version: 2,
      eventSeq: 2,
    });
    expect(await keyItemOf(customerId, 'key-1')).toMatchObject({ state: 'ACTIVE', dueType: 'ROTATE', generation: 1 });
    // Its events, in the same write: numbered 1 and 2, by the attempt.
    for (const [sequence, type] of [[1, 'KeyProvisioned'], [2, 'KeyEmailed']] as const) {
      const key = { pk: profileKey(customerId).pk, sk: `EVENT#${String(sequence).padStart(12, '0')}` };
      expect((await aws.dynamo.send(new GetCommand({ TableName: stack.tableName, Key: key, ConsistentRead: true }))).Item).toMatchObject({
        customerId,
        sequence,
        type,
        correlationId: 'attempt-1',
        time: at(1).toISOString(),
      });
    }
    expect(await registrations.getCustomer(customerId)).toMatchObject({
      status: 'ACTIVE',
      tier: 'basic',
      keys: [{ keyId: 'key-1', state: 'ACTIVE' }],
    });
  });

  it('records an owed email’s key without calling it emailed', async () => {
    const customerId = unique('cust');
    const registration = aRegistration(customerId);
    await registrations.claim(registration, T0);

    await recordKey(registration, 'key-1', at(1), 'EMAIL_PENDING');

    const profile = await profileOf(customerId);
    expect(profile).toMatchObject({ status: 'ACTIVE', keys: { 'key-1': 'ACTIVE' } });
    expect(profile).not.toHaveProperty('emailedKeyId');
    expect(profile).not.toHaveProperty('lease');
  });

  it('refuses a record from an attempt that lost the customer’s lease, writing nothing', async () => {
    const customerId = unique('cust');
    const registration = aRegistration(customerId);
    await registrations.claim(registration, T0);
    await registrations.releaseLease(registration, at(1));

    const record = recordKey(registration, 'key-1', at(2));

    await expect(record).rejects.toBeInstanceOf(RegistrationInProgressError);
    expect(await keyItemOf(customerId, 'key-1')).toBeUndefined();
    expect(await profileOf(customerId)).toMatchObject({ status: 'PENDING' });
  });

  it('returns a failed first registration’s customer to UNREGISTERED, free for the next registration', async () => {
    const customerId = unique('cust');
    const registration = aRegistration(customerId);
    await registrations.claim(registration, T0);

    const failure = { reason: 'association-rejected', detail: 'no', orphanKeyId: 'key-x' };
    await registrations.recordFailure({ registration, ...failure, now: at(1) });

    const profile = await profileOf(customerId);
    expect(profile).toMatchObject({ status: 'UNREGISTERED', version: 2 });
    expect(profile).not.toHaveProperty('lease');
    expect(profile).not.toHaveProperty('priorStatus');
    expect(await keyItemOf(customerId, 'key-x')).toMatchObject({ state: 'ORPHANED', dueType: 'CLEANUP' });
    expect(await registrations.getCustomer(customerId)).toBeUndefined();
    const next = aRegistration(customerId, { registrationId: unique('reg') });
    expect(await registrations.claim(next, at(2))).toEqual({ kind: 'claimed', registration: next });
  });

  it('answers customer-busy with the holder while another operation holds a free customer', async () => {
    const customerId = unique('cust');
    const registration = aRegistration(customerId);
    await registrations.claim(registration, T0);
    await registrations.recordFailure({ registration, reason: 'r', detail: 'd', now: at(1) });
    await ledger.acquire(customerId, leaseFor('reconciler', { intent: { operation: 'reconcile' }, mustFinish: false }), at(2));

    const claim = await registrations.claim(aRegistration(customerId, { registrationId: unique('reg') }), at(3));

    expect(claim).toEqual({
      kind: 'customer-busy',
      holder: { owner: 'reconciler', operation: 'reconcile', until: ms(120), mustFinish: false },
    });
  });
});

describe('re-activation of a revoked customer', () => {
  async function revokedCustomer() {
    const { customerId, registration } = await registeredCustomer();
    const revoke = await ledger.acquire(
      customerId,
      leaseFor('revoke-1', { intent: { operation: 'revoke' }, setStatus: 'REVOKED', status: ['ACTIVE'] }),
      at(5),
    );
    expect(revoke.kind).toBe('acquired');
    await ledger.commit(
      customerId,
      'revoke-1',
      {
        status: 'REVOKED',
        keys: { 'key-1': 'DISABLED' },
        items: [{ kind: 'update', keyId: 'key-1', set: { state: 'DISABLED' }, due: { type: 'DELETE', at: at(86_400).toISOString() } }],
        registration: { registrationId: registration.registrationId, state: 'REVOKED' },
      },
      at(6),
    );
    return customerId;
  }

  it('refuses a plain registration of a revoked customer', async () => {
    const customerId = await revokedCustomer();

    expect(await registrations.claim(aRegistration(customerId, { registrationId: unique('reg') }), at(10))).toEqual({
      kind: 'customer-revoked',
    });
  });

  it('reserves it for a re-activation, still REVOKED to readers, and back to REVOKED when that fails', async () => {
    const customerId = await revokedCustomer();
    const reactivation = aRegistration(customerId, { registrationId: unique('reg'), reactivate: true, leaseExpiresAt: ms(70) });

    expect(await registrations.claim(reactivation, at(10))).toMatchObject({ kind: 'claimed' });

    expect(await profileOf(customerId)).toMatchObject({ status: 'PENDING', priorStatus: 'REVOKED', revokedAt: at(6).toISOString() });
    expect(await registrations.getCustomer(customerId)).toMatchObject({ status: 'REVOKED', tier: 'basic' });
    expect(await registrations.claim(aRegistration(customerId, { registrationId: unique('reg'), reactivate: true }), at(11))).toEqual({
      kind: 'customer-taken',
    });

    await registrations.recordFailure({ registration: reactivation, reason: 'r', detail: 'd', now: at(12) });

    expect(await profileOf(customerId)).toMatchObject({ status: 'REVOKED', registrationId: reactivation.registrationId });
  });

  it('makes the customer ACTIVE again with the new key', async () => {
    const customerId = await revokedCustomer();
    const reactivation = aRegistration(customerId, { registrationId: unique('reg'), reactivate: true, leaseExpiresAt: ms(70) });
    await registrations.claim(reactivation, at(10));

    await recordKey(reactivation, 'key-2', at(11));

    expect(await profileOf(customerId)).toMatchObject({
      status: 'ACTIVE',
      keys: { 'key-1': 'DISABLED', 'key-2': 'ACTIVE' },
      emailedKeyId: 'key-2',
      registrationId: reactivation.registrationId,
    });
  });
});

describe('a later attempt takes the registration over', () => {
  it('takes the customer’s lease from the registration’s expired attempt', async () => {
    const customerId = unique('cust');
    const registration = aRegistration(customerId, { leaseExpiresAt: ms(10) });
    await registrations.claim(registration, T0);

    const taken = await registrations.takeOver(registration, { attemptId: 'attempt-2', leaseExpiresAt: ms(80) }, at(20));

    expect(taken).toEqual({
      ...registration,
      attemptId: 'attempt-2',
      leaseExpiresAt: ms(80),
      resumeAttempts: 1,
      updatedAt: at(20).toISOString(),
    });
    expect(await registrationItemOf(registration.registrationId)).toMatchObject({
      attemptId: 'attempt-2',
      resumeAttempts: 1,
      state: 'PENDING',
    });
    expect(await profileOf(customerId)).toMatchObject({
      lease: { owner: 'attempt-2', operation: 'register', until: ms(80), mustFinish: true },
      version: 2,
    });
    // The attempt that saw the same expired lease later loses; the first attempt lost its lease.
    const late = await registrations.takeOver(registration, { attemptId: 'attempt-3', leaseExpiresAt: ms(90) }, at(21));
    expect(late).toBeUndefined();
    await expect(recordKey(registration, 'key-1', at(22))).rejects.toBeInstanceOf(RegistrationInProgressError);
    await recordKey(taken as Registration, 'key-1', at(22));
    expect(await profileOf(customerId)).toMatchObject({ status: 'ACTIVE', keys: { 'key-1': 'ACTIVE' } });
  });

  it('leases a QUEUED registration’s customer when its first attempt starts', async () => {
    const customerId = unique('cust');
    const queued = aRegistration(customerId, { state: 'QUEUED', leaseExpiresAt: 0 });
    await registrations.claim(queued, T0);
    expect(await profileOf(customerId)).not.toHaveProperty('lease');

    const taken = await registrations.takeOver(queued, { attemptId: 'worker-1', leaseExpiresAt: ms(60) }, at(1));

    expect(taken).toMatchObject({ state: 'PENDING', attemptId: 'worker-1' });
    expect(await profileOf(customerId)).toMatchObject({ status: 'PENDING', lease: { owner: 'worker-1' } });
  });

  it('throws CustomerBusyError, with the holder’s remaining time, while another operation holds the customer', async () => {
    const customerId = unique('cust');
    const queued = aRegistration(customerId, { state: 'QUEUED', leaseExpiresAt: 0 });
    await registrations.claim(queued, T0);
    await ledger.acquire(customerId, leaseFor('op-x', { until: ms(31) }), at(1));

    const takeOver = registrations.takeOver(queued, { attemptId: 'worker-1', leaseExpiresAt: ms(60) }, at(1));

    await expect(takeOver).rejects.toBeInstanceOf(CustomerBusyError);
    await expect(takeOver).rejects.toMatchObject({ retryAfterSeconds: 30 });
    expect(await registrationItemOf(queued.registrationId)).toMatchObject({ state: 'QUEUED', attemptId: 'attempt-1' });
  });

  it('fails an unclaimed registration and returns its customer to the status before the claim', async () => {
    const customerId = unique('cust');
    const queued = aRegistration(customerId, { state: 'QUEUED', leaseExpiresAt: 0 });
    await registrations.claim(queued, T0);

    expect(await registrations.failUnclaimed(queued.registrationId, { reason: 'poison', detail: 'd' }, at(1))).toBe(true);

    expect(await registrationItemOf(queued.registrationId)).toMatchObject({ state: 'FAILED', failureReason: 'poison' });
    const profile = await profileOf(customerId);
    expect(profile).toMatchObject({ status: 'UNREGISTERED' });
    expect(profile).not.toHaveProperty('priorStatus');
    expect(await registrations.failUnclaimed(queued.registrationId, { reason: 'poison', detail: 'd' }, at(2))).toBe(false);
    expect(await registrations.failUnclaimed(unique('missing'), { reason: 'poison', detail: 'd' }, at(2))).toBe(false);
  });

  it('still fails the registration when its customer is held by someone else', async () => {
    const customerId = unique('cust');
    const queued = aRegistration(customerId, { state: 'QUEUED', leaseExpiresAt: 0 });
    await registrations.claim(queued, T0);
    await ledger.acquire(customerId, leaseFor('op-x'), at(1));

    expect(await registrations.failUnclaimed(queued.registrationId, { reason: 'poison', detail: 'd' }, at(2))).toBe(true);

    expect(await registrationItemOf(queued.registrationId)).toMatchObject({ state: 'FAILED' });
    expect(await profileOf(customerId)).toMatchObject({ status: 'PENDING', lease: { owner: 'op-x' } });
  });

  it('releases both leases at once for the next attempt', async () => {
    const customerId = unique('cust');
    const registration = aRegistration(customerId);
    await registrations.claim(registration, T0);

    await registrations.releaseLease(registration, at(1));
    await registrations.releaseLease({ ...registration, attemptId: 'not-me' }, at(1));

    expect(await registrationItemOf(registration.registrationId)).toMatchObject({ leaseExpiresAt: 0 });
    expect(await profileOf(customerId)).not.toHaveProperty('lease');
  });
});

describe('the ledger', () => {
  it('acquires, commits a rotation and releases the lease in one write each', async () => {
    const { customerId } = await registeredCustomer();
    // What earlier versions left on a key item, which the commit clears.
    await aws.dynamo.send(
      new UpdateCommand({
        TableName: stack.tableName,
        Key: keyItemKey(customerId, 'key-1'),
        UpdateExpression: 'SET rotation = :old, needsRepair = :old',
        ExpressionAttributeValues: { ':old': { attemptId: 'legacy' } },
      }),
    );

    const acquired = await ledger.acquire(
      customerId,
      leaseFor('rotate-1', { status: ['ACTIVE'], key: { keyId: 'key-1', states: ['ACTIVE'] } }),
      at(10),
    );

    expect(acquired).toMatchObject({
      kind: 'acquired',
      customer: { status: 'ACTIVE', version: 3, keys: { 'key-1': 'ACTIVE' }, lease: { owner: 'rotate-1', graceDays: 7 } },
    });
    expect(await profileOf(customerId)).toMatchObject({ dueType: 'REPAIR', dueAt: at(120).toISOString(), version: 3 });

    const successor: CustomerKey = {
      customerId,
      keyId: 'key-2',
      state: 'ACTIVE',
      usagePlanId: 'plan-basic',
      tier: 'basic',
      fingerprint: 'ef567890',
      registrationId: `reg-${customerId}`,
      createdAt: at(11).toISOString(),
      rotateAt: at(99).toISOString(),
      generation: 2,
    };
    await ledger.commit(
      customerId,
      'rotate-1',
      {
        keys: { 'key-1': 'RETIRING', 'key-2': 'ACTIVE' },
        emailedKeyId: 'key-2',
        items: [
          { kind: 'put', key: successor, due: { type: 'ROTATE', at: at(99).toISOString() }, replaces: 'key-1' },
          {
            kind: 'update',
            keyId: 'key-1',
            set: { state: 'RETIRING', retireAt: at(50).toISOString(), successorKeyId: 'key-2' },
            due: { type: 'RETIRE', at: at(50).toISOString() },
          },
        ],
      },
      at(12),
    );

    const profile = await profileOf(customerId);
    expect(profile).toMatchObject({ keys: { 'key-1': 'RETIRING', 'key-2': 'ACTIVE' }, emailedKeyId: 'key-2', version: 4 });
    for (const gone of ['lease', 'dueType', 'dueAt']) expect(profile).not.toHaveProperty(gone);
    expect(await keyItemOf(customerId, 'key-2')).toEqual({
      ...keyItemKey(customerId, 'key-2'),
      ...successor,
      predecessorKeyId: 'key-1',
      dueType: 'ROTATE',
      dueAt: at(99).toISOString(),
    });
    const old = await keyItemOf(customerId, 'key-1');
    expect(old).toMatchObject({ state: 'RETIRING', successorKeyId: 'key-2', dueType: 'RETIRE', dueAt: at(50).toISOString() });
    expect(old).not.toHaveProperty('rotation');
    expect(old).not.toHaveProperty('needsRepair');

    // The nested precondition reads the list: key-1 is no longer ACTIVE, key-2 is.
    const again = await ledger.acquire(customerId, leaseFor('rotate-2', { key: { keyId: 'key-1', states: ['ACTIVE'] } }), at(13));
    expect(again).toMatchObject({ kind: 'refused', customer: { keys: { 'key-1': 'RETIRING' } } });
    expect(
      await ledger.acquire(customerId, leaseFor('rotate-2', { key: { keyId: 'key-2', states: ['ACTIVE', 'RETIRING'] } }), at(13)),
    ).toMatchObject({ kind: 'acquired' });
  });

  it('records a tier change in the history, removes a key from the list, and moves a key out of the index', async () => {
    const { customerId } = await registeredCustomer();
    await ledger.acquire(customerId, leaseFor('tier-1', { intent: { operation: 'change-tier', tier: 'pro' } }), at(10));

    await ledger.commit(
      customerId,
      'tier-1',
      {
        tier: { from: 'basic', to: 'pro', cause: 'portal' },
        tierEventAt: at(9).toISOString(),
        keys: { 'key-1': null },
        items: [{ kind: 'update', keyId: 'key-1', set: { usagePlanId: 'plan-pro', tier: 'pro' }, due: null }],
      },
      at(11),
    );

    const profile = await profileOf(customerId);
    expect(profile).toMatchObject({
      tier: 'pro',
      tierEventAt: at(9).toISOString(),
      tierHistory: [{ from: 'basic', to: 'pro', requestId: 'portal', at: at(11).toISOString() }],
      keys: {},
    });
    const key = await keyItemOf(customerId, 'key-1');
    expect(key).toMatchObject({ usagePlanId: 'plan-pro', tier: 'pro', updatedAt: at(11).toISOString() });
    expect(key).not.toHaveProperty('dueType');
  });

  it('writes nothing for a holder whose lease was taken over', async () => {
    const { customerId } = await registeredCustomer();
    await ledger.acquire(customerId, leaseFor('slow', { mustFinish: false, until: ms(20) }), at(10));
    expect(await ledger.acquire(customerId, leaseFor('fast', { mustFinish: false }), at(21))).toMatchObject({ kind: 'acquired' });

    const commit = ledger.commit(customerId, 'slow', { keys: { 'key-1': 'DISABLED' } }, at(22));

    await expect(commit).rejects.toBeInstanceOf(LeaseLostError);
    expect(await profileOf(customerId)).toMatchObject({ keys: { 'key-1': 'ACTIVE' }, lease: { owner: 'fast' } });
    expect(await ledger.renew(customerId, 'slow', ms(200), at(23))).toBe(false);
    expect(await ledger.renew(customerId, 'fast', ms(200), at(23))).toBe(true);
    expect(await profileOf(customerId)).toMatchObject({ lease: { owner: 'fast', until: ms(200) }, dueAt: at(200).toISOString() });
  });

  it('answers busy while a lease is live and not-found for no customer', async () => {
    const { customerId } = await registeredCustomer();
    await ledger.acquire(customerId, leaseFor('first'), at(10));

    expect(await ledger.acquire(customerId, leaseFor('second'), at(11))).toMatchObject({ kind: 'busy', holder: { owner: 'first' } });
    expect(await ledger.acquire(unique('nobody'), leaseFor('second'), at(11))).toEqual({ kind: 'not-found' });
    expect(await profileOf(customerId)).toMatchObject({ lease: { owner: 'first' } });

    await ledger.release(customerId, 'second');
    expect(await profileOf(customerId)).toMatchObject({ lease: { owner: 'first' } });
    await ledger.release(customerId, 'first');
    const released = await profileOf(customerId);
    for (const gone of ['lease', 'dueType', 'dueAt']) expect(released).not.toHaveProperty(gone);
  });

  it('hands an abandoned lease to the sweep alone, which learns what was interrupted', async () => {
    const { customerId } = await registeredCustomer();
    // The sweep's clock, well before every other REPAIR entry of this table.
    const early = (seconds: number) => new Date(Date.UTC(2001, 0, 1) + seconds * 1000);
    await ledger.acquire(
      customerId,
      leaseFor('tier-1', { intent: { operation: 'change-tier', tier: 'pro' }, mustFinish: false, until: early(60).getTime() }),
      early(0),
    );

    await ledger.abandon(customerId, 'tier-1', early(5));
    await ledger.abandon(customerId, 'not-the-holder', early(5));

    expect(await ledger.findInterrupted(early(4), 10)).not.toContainEqual(expect.objectContaining({ customerId }));
    expect(await ledger.findInterrupted(early(6), 10)).toContainEqual({
      customerId,
      owner: 'tier-1',
      intent: { operation: 'change-tier', tier: 'pro' },
    });
    expect(await ledger.acquire(customerId, leaseFor('rotate-1', { until: early(120).getTime() }), early(7))).toMatchObject({
      kind: 'busy',
      holder: { owner: 'tier-1', mustFinish: true },
    });

    // Only the lease it listed: one whose owner is another's is left alone.
    const stale = await ledger.acquire(
      customerId,
      leaseFor('sweep-0', { intent: { operation: 'repair' }, takeOverInterrupted: { owner: 'rotate-0' }, until: early(120).getTime() }),
      early(7),
    );
    const sweep = await ledger.acquire(
      customerId,
      leaseFor('sweep-1', { intent: { operation: 'change-tier', tier: 'pro' }, takeOverInterrupted: { owner: 'tier-1' }, until: early(120).getTime() }),
      early(7),
    );

    expect(stale).toMatchObject({ kind: 'refused' });
    expect(sweep).toMatchObject({
      kind: 'acquired',
      interrupted: { owner: 'tier-1', operation: 'change-tier', tier: 'pro', until: early(5).getTime(), mustFinish: true },
    });
    await ledger.commit(customerId, 'sweep-1', { tier: { from: 'basic', to: 'pro', cause: 'repair' } }, early(8));
    expect(await ledger.findInterrupted(early(200), 10)).not.toContainEqual(expect.objectContaining({ customerId }));
  });

  it('gives a profile written before the key list one on the first lease, so a commit can set its entries', async () => {
    const customerId = unique('legacy');
    await aws.dynamo.send(
      new PutCommand({
        TableName: stack.tableName,
        Item: { ...profileKey(customerId), customerId, email: 'e@example.com', tier: 'basic', status: 'ACTIVE', registrationId: 'r' },
      }),
    );

    expect(await ledger.acquire(customerId, leaseFor('op-1', { status: ['ACTIVE'] }), at(1))).toMatchObject({
      kind: 'acquired',
      customer: { keys: {}, version: 1 },
    });
    await ledger.commit(customerId, 'op-1', { keys: { 'key-1': 'ACTIVE', 'key-0': null } }, at(2));

    expect(await profileOf(customerId)).toMatchObject({ keys: { 'key-1': 'ACTIVE' }, version: 2 });
  });
});

describe('a drain move’s place in its target (place, and release giving it back)', () => {
  const shardOf = async (shardId: string) =>
    (await aws.dynamo.send(new GetCommand({ TableName: stack.tableName, Key: shardKey(shardId), ConsistentRead: true }))).Item;

  it('counts the key below the mark and notes it on the lease; refuses at the mark; the release gives it back', async () => {
    const { customerId } = await registeredCustomer();
    const other = await registeredCustomer();
    const shardId = unique('target').slice(0, 40);
    await ledger.acquire(customerId, leaseFor('move-1'), at(2));
    await ledger.acquire(other.customerId, leaseFor('move-2'), at(2));

    expect(await ledger.place(customerId, 'move-1', { shardId, highWaterKeys: 1 }, at(3))).toBe('placed');
    expect(await ledger.place(other.customerId, 'move-2', { shardId, highWaterKeys: 1 }, at(3))).toBe('shard-full');
    expect(await ledger.place(customerId, 'not-the-holder', { shardId, highWaterKeys: 5 }, at(3))).toBe('lost');
    expect(await shardOf(shardId)).toMatchObject({ placedKeys: 1 });
    expect(await profileOf(customerId)).toMatchObject({ lease: { owner: 'move-1', placed: shardId } });
    expect(await profileOf(other.customerId)).not.toHaveProperty('lease.placed');

    await ledger.release(customerId, 'not-the-holder', shardId);
    expect(await shardOf(shardId)).toMatchObject({ placedKeys: 1 });
    await ledger.release(customerId, 'move-1', shardId);
    expect(await shardOf(shardId)).toMatchObject({ placedKeys: 0 });
    expect(await profileOf(customerId)).not.toHaveProperty('lease');
  });

  it('lets the sweep take a move’s lease over only with the count it listed, and carry it on', async () => {
    const { customerId } = await registeredCustomer();
    const shardId = unique('target').slice(0, 40);
    const intent = { operation: 'rotate' as const, keyId: 'key-1', graceDays: 7, toShard: shardId };
    await ledger.acquire(customerId, leaseFor('move-1', { intent }), at(2));
    const [listedBefore] = (await ledger.findInterrupted(at(200), 1000)).filter((entry) => entry.customerId === customerId);
    expect(await ledger.place(customerId, 'move-1', { shardId, highWaterKeys: 5 }, at(3))).toBe('placed');

    const stale = await ledger.acquire(
      customerId,
      leaseFor('sweep-1', { intent: listedBefore!.intent!, takeOverInterrupted: { owner: 'move-1' }, until: ms(400) }),
      at(200),
    );
    const [listed] = (await ledger.findInterrupted(at(200), 1000)).filter((entry) => entry.customerId === customerId);
    const sweep = await ledger.acquire(
      customerId,
      leaseFor('sweep-2', { intent: listed!.intent!, takeOverInterrupted: { owner: listed!.owner }, until: ms(400) }),
      at(200),
    );

    expect(stale).toMatchObject({ kind: 'refused' });
    expect(listed).toMatchObject({ owner: 'move-1', intent: { placed: shardId } });
    expect(sweep).toMatchObject({ kind: 'acquired', interrupted: { owner: 'move-1', placed: shardId } });
    expect(await profileOf(customerId)).toMatchObject({ lease: { owner: 'sweep-2', placed: shardId, toShard: shardId } });
  });
});
