import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AcquireRequest } from '../../shared/core/customer-record';
import { AssociationRejectedError, CustomerBusyError, LeaseLostError, RegistrationInProgressError, TransientAwsError } from '../../shared/errors';
import { hashRegistrationRequest, type Registration } from '../../shared/core/registration';
import { operationPorts } from '../support/in-memory-scheduling';
import { FakeAwsError, InMemoryWorld } from '../support/in-memory-world';

/*
 * The concurrency model is only as good as its fakes: each must keep its port's contract (the
 * TSDoc) and refuse what the DynamoDB and API Gateway adapters refuse.
 */

const START = new Date('2026-03-02T09:00:00.000Z');
const LEASE_MS = 60_000;
const TIER_MAP = { free: 'plan-free', pro: 'plan-pro' };

const aWorld = () => new InMemoryWorld({ tierMap: TIER_MAP, resumeAfterSeconds: 60, foreignPlans: ['plan-other'] }, START);
const at = (world: InMemoryWorld, ms = 0) => new Date(world.now + ms);

function aRegistration(world: InMemoryWorld, overrides: Partial<Registration> = {}): Registration {
  const request = { customerId: 'c1', email: 'c1@example.com', tier: 'free' };
  return {
    ...request,
    registrationId: 'reg-1',
    payloadHash: hashRegistrationRequest(request),
    usagePlanId: TIER_MAP.free,
    state: 'PENDING',
    attemptId: 'attempt-1',
    leaseExpiresAt: world.now + LEASE_MS,
    createdAt: START.toISOString(),
    updatedAt: START.toISOString(),
    ...overrides,
  };
}

/** c1 registered with one ACTIVE key, no lease held. */
async function aRegisteredCustomer(world = aWorld()) {
  const registration = aRegistration(world);
  await world.registrationTable.claim(registration, at(world));
  const key = await world.gateway.ensureKey({ name: 'kp-reg-1', customerId: 'c1', description: '', tags: {} }, { lookupFirst: false });
  await world.registrationTable.recordKey({
    registration,
    keyId: key.id,
    fingerprint: key.secret.fingerprint(),
    state: 'ACTIVE',
    rotateAt: new Date(START.getTime() + 90 * 86_400_000).toISOString(),
    now: at(world),
  });
  return { world, registration, keyId: key.id };
}

const lease = (owner: string, world: InMemoryWorld, overrides: Partial<AcquireRequest> = {}): AcquireRequest => ({
  owner,
  until: world.now + LEASE_MS,
  intent: { operation: 'rotate', keyId: 'k', graceDays: 7 },
  mustFinish: false,
  ...overrides,
});

describe('InMemoryLedger (CustomerLedger)', () => {
  it('answers not-found for a customer without a record', async () => {
    const world = aWorld();

    await expect(world.ledger.acquire('nobody', lease('a', world), at(world))).resolves.toEqual({ kind: 'not-found' });
  });

  it('takes a free lease with one write and returns the record holding it', async () => {
    const { world } = await aRegisteredCustomer();

    const outcome = await world.ledger.acquire('c1', lease('a', world), at(world));

    expect(outcome).toMatchObject({ kind: 'acquired', customer: { status: 'ACTIVE', lease: { owner: 'a', operation: 'rotate' } } });
    expect(outcome).not.toHaveProperty('interrupted', expect.anything());
    expect(world.profiles.get('c1')?.lease?.owner).toBe('a');
  });

  it('is busy while the lease is held, and takes an expired lease that need not be finished', async () => {
    const { world } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world), at(world));

    await expect(world.ledger.acquire('c1', lease('b', world), at(world, LEASE_MS))).resolves.toMatchObject({
      kind: 'busy',
      holder: { owner: 'a' },
    });
    const later = await world.ledger.acquire('c1', lease('b', world, { until: world.now + 3 * LEASE_MS }), at(world, LEASE_MS + 1));
    expect(later).toMatchObject({ kind: 'acquired', customer: { lease: { owner: 'b' } } });
    expect(later).not.toHaveProperty('interrupted', expect.anything());
  });

  it('leaves an expired must-finish lease to the sweep, which learns what it interrupted', async () => {
    const { world } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world, { mustFinish: true }), at(world));
    const after = at(world, LEASE_MS + 1);

    await expect(world.ledger.acquire('c1', lease('b', world), after)).resolves.toMatchObject({ kind: 'busy' });
    await expect(world.ledger.findInterrupted(after, 10)).resolves.toEqual([
      { customerId: 'c1', owner: 'a', intent: { operation: 'rotate', keyId: 'k', graceDays: 7 } },
    ]);
    // Only the lease it listed: another one, even expired with work to finish, is left alone.
    await expect(
      world.ledger.acquire('c1', lease('sweep', world, { mustFinish: true, takeOverInterrupted: { owner: 'x' } }), after),
    ).resolves.toMatchObject({ kind: 'refused' });
    await expect(
      world.ledger.acquire('c1', lease('sweep', world, { mustFinish: true, takeOverInterrupted: { owner: 'a' } }), after),
    ).resolves.toMatchObject({ kind: 'acquired', interrupted: { owner: 'a', mustFinish: true } });
  });

  it('counts a place for the lease’s holder below the mark only, and gives it back with the release', async () => {
    const { world } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world, { mustFinish: true }), at(world));

    await expect(world.ledger.place('c1', 'b', { shardId: 's2', highWaterKeys: 1 }, at(world))).resolves.toBe('lost');
    await expect(world.ledger.place('c1', 'a', { shardId: 's2', highWaterKeys: 1 }, at(world))).resolves.toBe('placed');
    expect(world.profiles.get('c1')?.lease?.placed).toBe('s2');
    await expect(world.ledger.place('c1', 'a', { shardId: 's2', highWaterKeys: 1 }, at(world))).resolves.toBe('shard-full');
    expect(world.shardRecord('s2').placedKeys).toBe(1);

    await world.ledger.release('c1', 'b', 's2');
    expect(world.shardRecord('s2').placedKeys).toBe(1);
    await world.ledger.release('c1', 'a', 's2');
    expect(world.shardRecord('s2').placedKeys).toBe(0);
  });

  it('keeps the REPAIR entry due at the lease end: not before, and moved by a renewal', async () => {
    const { world } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world, { mustFinish: true }), at(world));

    await expect(world.ledger.findInterrupted(at(world, LEASE_MS - 1), 10)).resolves.toEqual([]);
    await expect(world.ledger.renew('c1', 'a', world.now + 2 * LEASE_MS, at(world))).resolves.toBe(true);
    await expect(world.ledger.findInterrupted(at(world, LEASE_MS + 1), 10)).resolves.toEqual([]);
    await expect(world.ledger.findInterrupted(at(world, 2 * LEASE_MS), 10)).resolves.toHaveLength(1);
    await expect(world.ledger.renew('c1', 'b', world.now + 3 * LEASE_MS, at(world))).resolves.toBe(false);
  });

  it('refuses when the status or the key is not as required, and writes a requested status with the lease', async () => {
    const { world, keyId } = await aRegisteredCustomer();

    await expect(world.ledger.acquire('c1', lease('a', world, { status: ['REVOKED'] }), at(world))).resolves.toMatchObject({
      kind: 'refused',
      customer: { status: 'ACTIVE' },
    });
    await expect(
      world.ledger.acquire('c1', lease('a', world, { key: { keyId, states: ['RETIRING'] } }), at(world)),
    ).resolves.toMatchObject({ kind: 'refused' });
    await expect(
      world.ledger.acquire('c1', lease('a', world, { key: { keyId: 'other', states: ['ACTIVE'] } }), at(world)),
    ).resolves.toMatchObject({ kind: 'refused' });
    await expect(
      world.ledger.acquire('c1', lease('a', world, { status: ['ACTIVE'], key: { keyId, states: ['ACTIVE'] }, setStatus: 'REVOKED' }), at(world)),
    ).resolves.toMatchObject({ kind: 'acquired', customer: { status: 'REVOKED' } });
    expect(world.profiles.get('c1')?.status).toBe('REVOKED');
  });

  it('commits everything at once with the release, and nothing for a holder that lost the lease', async () => {
    const { world, keyId } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world, { mustFinish: true }), at(world));
    const change = {
      keys: { [keyId]: 'RETIRING' as const, successor: 'ACTIVE' as const },
      emailedKeyId: 'successor',
      items: [
        { kind: 'update' as const, keyId, set: { state: 'RETIRING' as const }, due: { type: 'RETIRE' as const, at: START.toISOString() } },
        {
          kind: 'put' as const,
          key: { customerId: 'c1', keyId: 'successor', state: 'ACTIVE' as const, usagePlanId: TIER_MAP.free, tier: 'free', registrationId: 'reg-1', createdAt: START.toISOString(), generation: 2 },
          due: { type: 'ROTATE' as const, at: START.toISOString() },
          replaces: keyId,
        },
      ],
    };

    await expect(world.ledger.commit('c1', 'b', change, at(world))).rejects.toBeInstanceOf(LeaseLostError);
    expect(world.profiles.get('c1')?.keys).toEqual({ [keyId]: 'ACTIVE' });
    await world.ledger.commit('c1', 'a', change, at(world));

    const profile = world.profiles.get('c1');
    expect(profile).toMatchObject({ keys: { [keyId]: 'RETIRING', successor: 'ACTIVE' }, emailedKeyId: 'successor', lease: undefined });
    expect(profile?.repairDueAt).toBeUndefined();
    expect(world.keyItems.get('c1')?.get(keyId)).toMatchObject({ state: 'RETIRING', due: { type: 'RETIRE' } });
    expect(world.keyItems.get('c1')?.get('successor')).toMatchObject({ state: 'ACTIVE', replaces: keyId });
  });

  it('cancels a commit whose key item update finds no item, writing nothing', async () => {
    const { world } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world), at(world));

    await expect(
      world.ledger.commit('c1', 'a', { status: 'REVOKED', items: [{ kind: 'update', keyId: 'missing', set: { state: 'DISABLED' } }] }, at(world)),
    ).rejects.toBeInstanceOf(FakeAwsError);
    expect(world.profiles.get('c1')).toMatchObject({ status: 'ACTIVE', lease: { owner: 'a' } });
  });

  it('moves the registration along with a commit, conditioned on its attempt when named', async () => {
    const { world, registration } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world), at(world));

    await expect(
      world.ledger.commit('c1', 'a', { registration: { registrationId: 'reg-1', state: 'REVOKED', attemptId: 'someone-else' } }, at(world)),
    ).rejects.toBeInstanceOf(LeaseLostError);
    expect(world.profiles.get('c1')?.lease?.owner).toBe('a');
    await world.ledger.commit('c1', 'a', { status: 'REVOKED', registration: { registrationId: 'reg-1', state: 'REVOKED', attemptId: registration.attemptId } }, at(world));
    expect(world.registrations.get('reg-1')).toMatchObject({ state: 'REVOKED', resumeAt: undefined });
  });

  it('releases only its own lease; an abandoned lease is must-finish and due for the sweep at once', async () => {
    const { world } = await aRegisteredCustomer();
    await world.ledger.acquire('c1', lease('a', world), at(world));

    await world.ledger.release('c1', 'b');
    expect(world.profiles.get('c1')?.lease?.owner).toBe('a');
    await world.ledger.abandon('c1', 'a', at(world));
    expect(world.profiles.get('c1')?.lease).toMatchObject({ owner: 'a', until: world.now, mustFinish: true });
    await expect(world.ledger.findInterrupted(at(world), 10)).resolves.toHaveLength(1);
    await expect(world.ledger.acquire('c1', lease('b', world), at(world, 1))).resolves.toMatchObject({ kind: 'busy' });
    await world.ledger.release('c1', 'a');
    expect(world.profiles.get('c1')?.lease).toBeUndefined();
    await expect(world.ledger.findInterrupted(at(world), 10)).resolves.toEqual([]);
  });
});

describe('InMemoryRegistrationTable (RegistrationStore)', () => {
  it('claims a new registration and reserves the customer with a must-finish lease of the attempt', async () => {
    const world = aWorld();

    await expect(world.registrationTable.claim(aRegistration(world), at(world))).resolves.toMatchObject({ kind: 'claimed' });
    expect(world.profiles.get('c1')).toMatchObject({
      status: 'PENDING',
      priorStatus: 'UNREGISTERED',
      registrationId: 'reg-1',
      lease: { owner: 'attempt-1', until: world.now + LEASE_MS, mustFinish: true, operation: 'register' },
    });
    await expect(world.registrationTable.findStalled(at(world, 60_000), 10)).resolves.toHaveLength(1);
  });

  it('reserves without a lease for a queued registration', async () => {
    const world = aWorld();

    await world.registrationTable.claim(aRegistration(world, { state: 'QUEUED', leaseExpiresAt: 0 }), at(world));

    expect(world.profiles.get('c1')?.status).toBe('PENDING');
    expect(world.profiles.get('c1')?.lease).toBeUndefined();
  });

  it('answers exists, customer-taken, customer-revoked and customer-busy', async () => {
    const { world } = await aRegisteredCustomer();
    const other = aRegistration(world, { registrationId: 'reg-2', attemptId: 'attempt-2' });

    await expect(world.registrationTable.claim(aRegistration(world), at(world))).resolves.toMatchObject({ kind: 'exists' });
    await expect(world.registrationTable.claim(other, at(world))).resolves.toEqual({ kind: 'customer-taken' });
    world.profiles.get('c1')!.status = 'REVOKED';
    await expect(world.registrationTable.claim(other, at(world))).resolves.toEqual({ kind: 'customer-revoked' });
    await world.ledger.acquire('c1', lease('revoke', world, { mustFinish: true }), at(world));
    await expect(world.registrationTable.claim({ ...other, reactivate: true }, at(world))).resolves.toMatchObject({
      kind: 'customer-busy',
      holder: { owner: 'revoke' },
    });
    await expect(world.registrationTable.claim({ ...other, reactivate: true }, at(world, LEASE_MS + 1))).resolves.toMatchObject({
      kind: 'customer-busy',
    });
  });

  it('re-activates a revoked customer and returns it to REVOKED when the registration fails', async () => {
    const { world, keyId } = await aRegisteredCustomer();
    world.profiles.get('c1')!.status = 'REVOKED';
    const reactivation = aRegistration(world, { registrationId: 'reg-2', attemptId: 'attempt-2', reactivate: true });

    await expect(world.registrationTable.claim(reactivation, at(world))).resolves.toMatchObject({ kind: 'claimed' });
    expect(world.profiles.get('c1')).toMatchObject({ status: 'PENDING', priorStatus: 'REVOKED', keys: { [keyId]: 'ACTIVE' } });
    await world.registrationTable.recordFailure({ registration: reactivation, reason: 'association-rejected', detail: '', orphanKeyId: 'orphan', now: at(world) });

    expect(world.profiles.get('c1')).toMatchObject({ status: 'REVOKED', lease: undefined });
    expect(world.registrations.get('reg-2')).toMatchObject({ state: 'FAILED', resumeAt: undefined });
    expect(world.keyItems.get('c1')?.get('orphan')).toMatchObject({ state: 'ORPHANED', due: { type: 'CLEANUP' } });
  });

  it('takes a registration over once its lease expired, with the customer lease of the previous attempt', async () => {
    const world = aWorld();
    const registration = aRegistration(world);
    await world.registrationTable.claim(registration, at(world));
    const next = { attemptId: 'attempt-2', leaseExpiresAt: world.now + 3 * LEASE_MS };

    await expect(world.registrationTable.takeOver(registration, next, at(world))).resolves.toBeUndefined();
    const taken = await world.registrationTable.takeOver(registration, next, at(world, LEASE_MS + 1));

    expect(taken).toMatchObject({ attemptId: 'attempt-2', resumeAttempts: 1 });
    expect(world.profiles.get('c1')?.lease).toMatchObject({ owner: 'attempt-2', mustFinish: true });
    await expect(world.registrationTable.takeOver(registration, { ...next, attemptId: 'attempt-3' }, at(world, LEASE_MS + 1))).resolves.toBeUndefined();
  });

  it('refuses a take-over while another operation holds the customer', async () => {
    const world = aWorld();
    const registration = aRegistration(world, { state: 'QUEUED', leaseExpiresAt: 0 });
    await world.registrationTable.claim(registration, at(world));
    world.profiles.get('c1')!.lease = { owner: 'repair', operation: 'repair', until: world.now + LEASE_MS, mustFinish: true };

    await expect(
      world.registrationTable.takeOver(registration, { attemptId: 'attempt-2', leaseExpiresAt: world.now + LEASE_MS }, at(world)),
    ).rejects.toBeInstanceOf(CustomerBusyError);
    expect(world.registrations.get('reg-1')?.state).toBe('QUEUED');
  });

  it('shows readers a customer as it was until the registration records its key', async () => {
    const world = aWorld();
    await world.registrationTable.claim(aRegistration(world), at(world));

    await expect(world.registrationTable.getCustomer('c1')).resolves.toBeUndefined();
  });

  it('records the key, lists it, and releases the lease; a lost lease refuses', async () => {
    const { world, registration, keyId } = await aRegisteredCustomer();

    expect(world.profiles.get('c1')).toMatchObject({ status: 'ACTIVE', keys: { [keyId]: 'ACTIVE' }, emailedKeyId: keyId, lease: undefined });
    expect(world.registrations.get('reg-1')).toMatchObject({ state: 'ACTIVE', keyId, resumeAt: undefined });
    expect(world.keyItems.get('c1')?.get(keyId)).toMatchObject({ state: 'ACTIVE', generation: 1, due: { type: 'ROTATE' } });
    await expect(
      world.registrationTable.recordKey({ registration, keyId, fingerprint: 'f', state: 'ACTIVE', rotateAt: '', now: at(world) }),
    ).rejects.toBeInstanceOf(RegistrationInProgressError);
  });

  it('fails only a registration nobody works on, returning the customer to where it was', async () => {
    const world = aWorld();
    await world.registrationTable.claim(aRegistration(world), at(world));

    await expect(world.registrationTable.failUnclaimed('reg-1', { reason: 'x', detail: '' }, at(world))).resolves.toBe(false);
    await expect(world.registrationTable.failUnclaimed('reg-1', { reason: 'x', detail: '' }, at(world, LEASE_MS + 1))).resolves.toBe(true);
    expect(world.profiles.get('c1')).toMatchObject({ status: 'UNREGISTERED', lease: undefined });
  });

  it('gives back, on failing a registration nobody works on, the key its claim counted on the shard', async () => {
    const world = aWorld();
    await world.registrationTable.claim({ ...aRegistration(world), state: 'QUEUED', leaseExpiresAt: 0 }, at(world), { shardId: 'home', highWaterKeys: 5 });
    expect(world.shardRecord('home').placedKeys).toBe(1);

    await expect(world.registrationTable.failUnclaimed('reg-1', { reason: 'x', detail: '' }, at(world))).resolves.toBe(true);
    await expect(world.registrationTable.failUnclaimed('reg-1', { reason: 'x', detail: '' }, at(world))).resolves.toBe(false);

    expect(world.shardRecord('home').placedKeys).toBe(0);
  });

  it('lets go of both leases for the next attempt, only while this attempt holds them', async () => {
    const world = aWorld();
    const registration = aRegistration(world);
    await world.registrationTable.claim(registration, at(world));

    await world.registrationTable.releaseLease({ ...registration, attemptId: 'other' }, at(world));
    expect(world.profiles.get('c1')?.lease?.owner).toBe('attempt-1');
    await world.registrationTable.releaseLease(registration, at(world));
    expect(world.profiles.get('c1')?.lease).toBeUndefined();
    expect(world.registrations.get('reg-1')?.leaseExpiresAt).toBe(0);
  });
});

describe('InMemoryKeyTable (KeyStore, KeyRecords)', () => {
  it('finds keys by due partition and time, and moves one only from where it was', async () => {
    const { world, keyId } = await aRegisteredCustomer();
    const rotateAt = new Date(START.getTime() + 90 * 86_400_000);
    const [key] = await world.keyTable.keysOf('c1');

    await expect(world.keyTable.findDue('ROTATE', new Date(rotateAt.getTime() - 1), 10)).resolves.toEqual([]);
    await expect(world.keyTable.findDue('ROTATE', rotateAt, 10)).resolves.toMatchObject([{ keyId }]);
    await expect(world.keyTable.countDue('RETIRE', rotateAt)).resolves.toBe(0);
    await expect(world.keyTable.advance(key!, 'REMIND', { dueType: 'RETIRE', dueAt: '' }, at(world))).resolves.toBe(false);
    await expect(world.keyTable.advance(key!, 'ROTATE', { dueType: 'RETIRE', dueAt: START.toISOString() }, at(world))).resolves.toBe(true);
    await expect(world.keyTable.findDue('RETIRE', START, 10)).resolves.toHaveLength(1);
  });

  it('lists tracked items partition by partition and closes one only in the state judged', async () => {
    const { world, keyId } = await aRegisteredCustomer();
    const pages: string[][] = [];
    for await (const page of world.keyTable.trackedKeyPages()) pages.push(page.map((record) => record.keyId));

    expect(pages.flat()).toEqual([keyId]);
    await world.keyTable.closeRecord({ ...(await world.keyTable.keysOf('c1'))[0]!, state: 'ORPHANED' }, 'DELETED', at(world));
    expect(world.keyItems.get('c1')?.get(keyId)?.state).toBe('ACTIVE');
    await expect(world.keyTable.tiersOf(['c1', 'c9'])).resolves.toEqual(new Map([['c1', 'free']]));
  });
});

describe('FakeApiGateway (KeyGateway, KeyInventory)', () => {
  const spec = { name: 'kp-abc', customerId: 'c1', description: '', tags: { 'keyplan:managed': 'true' } };

  it('makes enabled keys with long distinct values, and finds one by its exact name when asked to', async () => {
    const world = aWorld();
    const first = await world.gateway.ensureKey(spec, { lookupFirst: false });

    expect(first.secret.reveal().length).toBeGreaterThanOrEqual(20);
    expect(world.apiKeys.get(first.id)).toMatchObject({ enabled: true, name: 'kp-abc' });
    await expect(world.gateway.ensureKey(spec, { lookupFirst: true })).resolves.toMatchObject({ id: first.id });
    await expect(world.gateway.ensureKey({ ...spec, name: 'kp-ab' }, { lookupFirst: true })).resolves.not.toMatchObject({ id: first.id });
    // CreateApiKey does not refuse a second key of a name: only a lookup prevents one.
    const second = await world.gateway.ensureKey(spec, { lookupFirst: false });
    expect(second.id).not.toBe(first.id);
    expect(second.secret.reveal()).not.toBe(first.secret.reveal());
    await expect(world.gateway.getKeyValue(first.id)).resolves.toMatchObject({});
    expect((await world.gateway.getKeyValue(first.id)).reveal()).toBe(first.secret.reveal());
  });

  it('puts a key into one plan per stage: the same plan again is success, another plan of the stage is rejected', async () => {
    const world = aWorld();
    const { id } = await world.gateway.ensureKey(spec, { lookupFirst: false });

    await world.gateway.addKeyToPlan(TIER_MAP.free, id);
    await world.gateway.addKeyToPlan(TIER_MAP.free, id);
    await expect(world.gateway.addKeyToPlan(TIER_MAP.pro, id)).rejects.toBeInstanceOf(AssociationRejectedError);
    await world.gateway.addKeyToPlan('plan-other', id);
    expect(world.plansOf(id).sort()).toEqual(['plan-free', 'plan-other']);
    await world.gateway.removeKeyFromPlan(TIER_MAP.free, id);
    await world.gateway.removeKeyFromPlan(TIER_MAP.free, id);
    await world.gateway.addKeyToPlan(TIER_MAP.pro, id);
    await expect(world.gateway.keysInPlan(TIER_MAP.pro)).resolves.toEqual([id]);
  });

  it('deletes a key out of every plan, repeatably; a deleted key cannot join a plan nor give its value', async () => {
    const world = aWorld();
    const { id } = await world.gateway.ensureKey(spec, { lookupFirst: false });
    await world.gateway.addKeyToPlan(TIER_MAP.free, id);

    await world.gateway.deleteKey(id);
    await world.gateway.deleteKey(id);
    await world.gateway.disableKey(id);

    expect(world.plansOf(id)).toEqual([]);
    await expect(world.gateway.keyExists(id)).resolves.toBe(false);
    await expect(world.gateway.addKeyToPlan(TIER_MAP.free, id)).rejects.toBeInstanceOf(AssociationRejectedError);
    await expect(world.gateway.getKeyValue(id)).rejects.toMatchObject({ name: 'NotFoundException' });
  });

  it('lists every key of the account page by page, without values', async () => {
    const world = aWorld();
    for (let i = 0; i < 7; i++) await world.gateway.ensureKey({ ...spec, name: `kp-${i}` }, { lookupFirst: false });
    const pages: number[] = [];
    for await (const page of world.gateway.listKeyPages()) pages.push(page.length);

    expect(pages).toEqual([3, 3, 1]);
  });
});

describe('FakeMailer', () => {
  it('keeps every email with the key values it carries', async () => {
    const world = aWorld();
    const key = await world.gateway.ensureKey({ name: 'kp-a', customerId: 'c1', description: '', tags: {} }, { lookupFirst: false });

    await world.mailer.send({ to: 'c1@example.com', subject: 's', text: `your key: ${key.secret.reveal()}`, html: '' });
    await world.mailer.send({ to: 'c1@example.com', subject: 's', text: 'a reminder', html: '' });

    expect(world.emails.map((email) => email.keyValues)).toEqual([[key.secret.reveal()], []]);
  });
});

describe('operationPorts', () => {
  it('lets a call through only when the scheduler releases it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (scheduler) => {
        const world = aWorld();
        const first = operationPorts(world, 'first', { scheduler }).ports;
        const second = operationPorts(world, 'second', { scheduler }).ports;
        const created = [
          first.gateway.ensureKey({ name: 'kp-first', customerId: 'c1', description: '', tags: {} }, { lookupFirst: false }),
          second.gateway.ensureKey({ name: 'kp-second', customerId: 'c1', description: '', tags: {} }, { lookupFirst: false }),
        ];
        expect(world.apiKeys.size).toBe(0);
        await scheduler.waitIdle();
        const keys = await Promise.all(created);
        expect(new Set(keys.map((key) => key.id)).size).toBe(2);
        expect(world.apiKeys.size).toBe(2);
      }),
      { numRuns: 20 },
    );
  });

  it('injects faults: a crash before or after the call never answers; a failure throws', async () => {
    const settled = (promise: Promise<unknown>) => Promise.race([promise.then(() => true, () => true), new Promise((resolve) => setImmediate(() => resolve(false)))]);
    const spec = { name: 'kp-x', customerId: 'c1', description: '', tags: {} };

    const before = aWorld();
    const crashedBefore = operationPorts(before, 'op', { fault: { call: 1, kind: 'crash-before' } });
    expect(await settled(crashedBefore.ports.gateway.ensureKey(spec, { lookupFirst: false }))).toBe(false);
    expect([before.apiKeys.size, crashedBefore.crashed()]).toEqual([0, true]);

    const after = aWorld();
    const crashedAfter = operationPorts(after, 'op', { fault: { call: 1, kind: 'crash-after' } });
    expect(await settled(crashedAfter.ports.gateway.ensureKey(spec, { lookupFirst: false }))).toBe(false);
    expect(after.apiKeys.size).toBe(1);

    const failing = aWorld();
    const failed = operationPorts(failing, 'op', { fault: { call: 2, kind: 'fail' } });
    const { id } = await failed.ports.gateway.ensureKey(spec, { lookupFirst: false });
    await expect(failed.ports.gateway.addKeyToPlan(TIER_MAP.free, id)).rejects.toBeInstanceOf(TransientAwsError);
    expect(failing.plansOf(id)).toEqual([]);

    const refusing = operationPorts(failing, 'op', { fault: { call: 1, kind: 'refuse' } });
    await expect(refusing.ports.gateway.addKeyToPlan(TIER_MAP.free, id)).rejects.toBeInstanceOf(AssociationRejectedError);

    const lost = operationPorts(failing, 'op', { fault: { call: 1, kind: 'fail-after' } });
    await expect(lost.ports.gateway.addKeyToPlan(TIER_MAP.free, id)).rejects.toBeInstanceOf(TransientAwsError);
    expect(failing.plansOf(id)).toEqual([TIER_MAP.free]);
  });

  it('aims a fault at the n-th call of one method', async () => {
    const world = aWorld();
    const { ports } = operationPorts(world, 'op', { fault: { method: 'gateway.disableKey', call: 2, kind: 'refuse' } });
    const { id } = await ports.gateway.ensureKey({ name: 'kp-x', customerId: 'c1', description: '', tags: {} }, { lookupFirst: false });

    await ports.gateway.disableKey(id);
    await expect(ports.gateway.disableKey(id)).rejects.toMatchObject({ name: 'BadRequestException' });
  });
});
