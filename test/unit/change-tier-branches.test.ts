import { describe, expect, it } from 'vitest';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import {
  AssociationRejectedError,
  CustomerBusyError,
  CustomerRevokedError,
  LeaseLostError,
  NotFoundError,
  TierChangeFailedError,
  TransientAwsError,
  ValidationError,
} from '../../shared/errors';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { rotateKey } from '../../shared/rotation/rotate-key';
import {
  aCrash,
  aGate,
  aQueuedCustomer,
  aRegisteredCustomer,
  aWorld,
  itemOf,
  pastTheLease,
  type PortOverrides,
  profileOf,
  recordingPorts,
  successorsOf,
  sweep,
  throttled,
  UNIT_SETTINGS,
  useCases,
  writesAmong,
} from '../support/in-memory-fixtures';
import { TIER_MAP } from '../support/in-memory-model';
import { directPorts } from '../support/in-memory-scheduling';
import type { InMemoryWorld } from '../support/in-memory-world';

/*
 * changeTier over the in-memory world: every refusal and every failure branch of the move, judged
 * by which plans API Gateway has the keys in and what the customer's record and key items say. A
 * crash is a call that never settles (the Lambda died); the sweep then finishes what it left.
 */

const SWEEP_MS = UNIT_SETTINGS.sweepSeconds * 1000;

/** The tier change's deps over the world's ports, some methods replaced; every call recorded. */
function tierChangeOver(world: InMemoryWorld, overrides: PortOverrides = {}) {
  const { ports, calls } = recordingPorts(world, overrides);
  return { deps: useCases(ports).tierChange, calls };
}

const aChange = (world: InMemoryWorld, tier: string, extra: { customerId?: string; eventAt?: string } = {}) => ({
  customerId: 'c1',
  tier,
  requestId: 'req-1',
  now: world.clock(),
  ...extra,
});

/** c1 on free with two live keys: its first, RETIRING, and the successor, ACTIVE (in this order in its list). */
async function aRotatedCustomer(world: InMemoryWorld): Promise<[string, string]> {
  const old = await aRegisteredCustomer(world);
  await rotateKey(old, { now: world.clock(), graceDays: UNIT_SETTINGS.graceDays }, useCases(directPorts(world)).rotation);
  const [successor] = successorsOf(world, old.keyId);
  if (!successor) throw new Error('setup: no successor');
  expect(Object.keys(profileOf(world, 'c1').keys)).toEqual([old.keyId, successor.id]);
  return [old.keyId, successor.id];
}

/** Each key in exactly this plan and no other. */
function expectOnlyIn(world: InMemoryWorld, keyIds: readonly string[], planId: string) {
  expect(keyIds.map((keyId) => ({ keyId, plans: world.plansOf(keyId) }))).toEqual(keyIds.map((keyId) => ({ keyId, plans: [planId] })));
}

/** The customer still on free as before: no history, the items on free's plan, the lease gone. */
function expectUnchangedOnFree(world: InMemoryWorld, keyIds: readonly string[]) {
  const profile = profileOf(world, 'c1');
  expect(profile.tier).toBe('free');
  expect(profile.tierHistory).toEqual([]);
  expect(profile.lease).toBeUndefined();
  expect(profile.repairDueAt).toBeUndefined();
  for (const keyId of keyIds) expect(itemOf(world, 'c1', keyId)).toMatchObject({ usagePlanId: TIER_MAP.free, tier: 'free' });
}

/** A change to pro whose every CreateUsagePlanKey fails: the move and the restore both. */
async function aChangeWhoseRestoreFailed(world: InMemoryWorld) {
  const { deps } = tierChangeOver(world, {
    gateway: { addKeyToPlan: async () => Promise.reject(new TransientAwsError('CreateUsagePlanKey failed (simulated 5xx)', 1)) },
  });
  return changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);
}

describe('changeTier refuses', () => {
  it('an unknown tier, before any call', async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const { deps, calls } = tierChangeOver(world);

    // Act
    const error = await changeTier(aChange(world, 'platinum'), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'tier' });
    expect(calls).toEqual([]);
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    expectUnchangedOnFree(world, [keyId]);
  });

  it('an unknown customer as not found, after the one lease attempt', async () => {
    // Prepare
    const world = aWorld();
    const { deps, calls } = tierChangeOver(world);

    // Act
    const error = await changeTier(aChange(world, 'pro', { customerId: 'nobody' }), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(calls).toEqual(['ledger.acquire']);
    expect(world.profiles.has('nobody')).toBe(false);
  });

  it('a revoked customer', async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    await revokeCustomer({ customerId: 'c1', now: world.clock() }, useCases(directPorts(world)).revocation);
    const { deps, calls } = tierChangeOver(world);

    // Act
    const error = await changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(CustomerRevokedError);
    expect(calls).toEqual(['ledger.acquire']);
    expect(profileOf(world, 'c1')).toMatchObject({ status: 'REVOKED', tier: 'free', lease: undefined });
    expectOnlyIn(world, [keyId], TIER_MAP.free);
  });

  it('a customer whose registration is making its key, as busy for the seconds its attempt has left', async () => {
    // Prepare: the registration's attempt died before CreateApiKey, holding the customer.
    const world = aWorld();
    const crash = aCrash();
    const { ports } = recordingPorts(world, { gateway: { ensureKey: async () => crash.die() } });
    void provisionKey(
      { registrationId: 'c1-r0', request: { customerId: 'c1', email: 'c1@example.com', tier: 'free' }, now: world.clock() },
      useCases(ports).provisioning,
    );
    await crash.reached;
    world.advance(20_000);
    const { deps, calls } = tierChangeOver(world);

    // Act
    const error = await changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(CustomerBusyError);
    expect(error).toMatchObject({ retryAfterSeconds: UNIT_SETTINGS.leaseSeconds - 20 });
    expect(calls).toEqual(['ledger.acquire']);
    expect(profileOf(world, 'c1')).toMatchObject({ status: 'PENDING', lease: { operation: 'register' } });
  });

  it('a customer still being registered, as busy for a lease period', async () => {
    // Prepare: accepted for the queue, its worker not started yet (PENDING, no lease held).
    const world = aWorld();
    await aQueuedCustomer(world);
    const { deps, calls } = tierChangeOver(world);

    // Act
    const error = await changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(CustomerBusyError);
    expect(error).toMatchObject({ name: 'CustomerBusyError', retryAfterSeconds: UNIT_SETTINGS.leaseSeconds });
    expect(calls).toEqual(['ledger.acquire']);
    expect(profileOf(world, 'c1').status).toBe('PENDING');
    expect(profileOf(world, 'c1').lease).toBeUndefined();
  });
});

describe('changeTier to the tier the customer is on', () => {
  it('moves nothing and releases the customer', async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const { deps, calls } = tierChangeOver(world);

    // Act
    const result = await changeTier(aChange(world, 'free'), deps);

    // Assess
    expect(result).toEqual({ customerId: 'c1', from: 'free', to: 'free', changed: false, keys: [{ keyId, usagePlanId: TIER_MAP.free }] });
    expect(calls).toEqual(['ledger.acquire', 'ledger.release']);
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    expectUnchangedOnFree(world, [keyId]);
    expect(profileOf(world, 'c1').tierEventAt).toBeUndefined();
  });

  it("records a billing event's time, so an older event cannot win later", async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const { deps, calls } = tierChangeOver(world);
    const eventAt = new Date(world.now - 5_000).toISOString();

    // Act
    const result = await changeTier(aChange(world, 'free', { eventAt }), deps);

    // Assess
    expect(result).toMatchObject({ changed: false, from: 'free', to: 'free' });
    expect(calls).toEqual(['ledger.acquire', 'ledger.commit']);
    expect(profileOf(world, 'c1').tierEventAt).toBe(eventAt);
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    expectUnchangedOnFree(world, [keyId]);
  });

  it("releases the customer when recording a billing event's time fails: nothing was moved, nothing is left to finish", async () => {
    // Prepare: the one write, the commit with the event's time, is throttled (certainly not applied).
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const { deps } = tierChangeOver(world, { ledger: { commit: async () => Promise.reject(throttled('TransactWriteItems')) } });
    const eventAt = new Date(world.now - 5_000).toISOString();

    // Act
    const error = await changeTier(aChange(world, 'free', { eventAt }), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(TransientAwsError);
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    // As a throttled first call anywhere else: the customer is free at once, not held for the sweep.
    expect(profileOf(world, 'c1').lease).toBeUndefined();
    expect(profileOf(world, 'c1').repairDueAt).toBeUndefined();
    expect(profileOf(world, 'c1').tierEventAt).toBeUndefined();
    // So the event's redelivery is applied at once.
    await expect(changeTier(aChange(world, 'free', { eventAt }), useCases(directPorts(world)).tierChange)).resolves.toMatchObject({
      changed: false,
    });
  });
});

describe('changeTier with a billing event', () => {
  it.each([
    ['a second older than', -1_000],
    ['a millisecond older than', -1],
  ])('drops an event %s the one applied, moving nothing', async (_, offsetMs) => {
    // Prepare: an event moved c1 to pro.
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const applied = new Date(world.now - 10_000).toISOString();
    await changeTier(aChange(world, 'pro', { eventAt: applied }), useCases(directPorts(world)).tierChange);
    const { deps, calls } = tierChangeOver(world);
    const eventAt = new Date(Date.parse(applied) + offsetMs).toISOString();

    // Act
    const result = await changeTier(aChange(world, 'free', { eventAt }), deps);

    // Assess
    expect(result).toEqual({
      customerId: 'c1',
      from: 'pro',
      to: 'pro',
      changed: false,
      stale: true,
      keys: [{ keyId, usagePlanId: TIER_MAP.pro }],
    });
    expect(calls).toEqual(['ledger.acquire', 'ledger.release']);
    expectOnlyIn(world, [keyId], TIER_MAP.pro);
    const profile = profileOf(world, 'c1');
    expect(profile).toMatchObject({ tier: 'pro', tierEventAt: applied, lease: undefined, repairDueAt: undefined });
    expect(profile.tierHistory).toHaveLength(1);
  });

  it('applies an event as old as the one applied: EventBridge times have whole seconds, the last processed wins', async () => {
    // Prepare: two changes in one second, the pro one processed first.
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const sameSecond = new Date(world.now - 10_000).toISOString();
    await changeTier(aChange(world, 'pro', { eventAt: sameSecond }), useCases(directPorts(world)).tierChange);

    // Act
    const result = await changeTier(aChange(world, 'free', { eventAt: sameSecond }), useCases(directPorts(world)).tierChange);

    // Assess
    expect(result).toMatchObject({ changed: true, from: 'pro', to: 'free' });
    expectOnlyIn(world, [keyId], TIER_MAP.free);
  });

  it('applies an event newer than the one applied', async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const applied = new Date(world.now - 10_000).toISOString();
    await changeTier(aChange(world, 'pro', { eventAt: applied }), useCases(directPorts(world)).tierChange);
    const eventAt = new Date(world.now - 1_000).toISOString();

    // Act
    const result = await changeTier(aChange(world, 'free', { eventAt }), useCases(directPorts(world)).tierChange);

    // Assess
    expect(result).toMatchObject({ changed: true, from: 'pro', to: 'free' });
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    expect(profileOf(world, 'c1')).toMatchObject({ tier: 'free', tierEventAt: eventAt });
  });
});

describe('changeTier moving the keys', () => {
  it('puts every live key into the new plan and no other, records the change and releases the customer', async () => {
    // Prepare
    const world = aWorld();
    const keys = await aRotatedCustomer(world);
    const { deps } = tierChangeOver(world);
    const now = world.clock();

    // Act
    const result = await changeTier(aChange(world, 'pro'), deps);

    // Assess
    expect(result).toEqual({
      customerId: 'c1',
      from: 'free',
      to: 'pro',
      changed: true,
      keys: keys.map((keyId) => ({ keyId, usagePlanId: TIER_MAP.pro })),
    });
    expectOnlyIn(world, keys, TIER_MAP.pro);
    const profile = profileOf(world, 'c1');
    expect(profile.tier).toBe('pro');
    expect(profile.tierHistory).toEqual([{ from: 'free', to: 'pro', cause: 'req-1', at: now.toISOString() }]);
    expect(profile.lease).toBeUndefined();
    expect(profile.repairDueAt).toBeUndefined();
    expect(profile.keys).toEqual({ [keys[0]]: 'RETIRING', [keys[1]]: 'ACTIVE' });
    for (const keyId of keys) expect(itemOf(world, 'c1', keyId)).toMatchObject({ usagePlanId: TIER_MAP.pro, tier: 'pro' });
  });

  it('takes four calls for a customer with one key', async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const { deps, calls } = tierChangeOver(world);

    // Act
    await changeTier(aChange(world, 'pro'), deps);

    // Assess
    expect(writesAmong(calls)).toEqual(['ledger.acquire', 'gateway.removeKeyFromPlan', 'gateway.addKeyToPlan', 'ledger.commit']);
    expectOnlyIn(world, [keyId], TIER_MAP.pro);
  });

  it('leaves a DISABLED key where it is', async () => {
    // Prepare: a rotation with a grace of 0 disabled the first key.
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    await rotateKey(old, { now: world.clock(), graceDays: 0 }, useCases(directPorts(world)).rotation);
    const [successor] = successorsOf(world, old.keyId);
    const { deps } = tierChangeOver(world);

    // Act
    const result = await changeTier(aChange(world, 'pro'), deps);

    // Assess
    expect(result.keys).toEqual([{ keyId: successor?.id, usagePlanId: TIER_MAP.pro }]);
    expectOnlyIn(world, [successor?.id ?? ''], TIER_MAP.pro);
    expect(world.plansOf(old.keyId)).toEqual([TIER_MAP.free]);
    expect(itemOf(world, 'c1', old.keyId)).toMatchObject({ state: 'DISABLED', usagePlanId: TIER_MAP.free });
  });
});

describe('changeTier when the move fails', () => {
  it('puts every key moved so far back into the old plan when the new plan refuses one, and releases the customer', async () => {
    // Prepare: the new plan refuses the second key, after the first moved.
    const world = aWorld();
    const keys = await aRotatedCustomer(world);
    const { deps } = tierChangeOver(world, {
      gateway: {
        addKeyToPlan: async (planId: string, keyId: string) => {
          if (planId === TIER_MAP.pro && keyId === keys[1]) throw new AssociationRejectedError('simulated: the plan refused the key');
          await world.gateway.addKeyToPlan(planId, keyId);
        },
      },
    });

    // Act
    const error = await changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(TierChangeFailedError);
    expect(error).toMatchObject({ repairNeeded: false });
    expectOnlyIn(world, keys, TIER_MAP.free);
    expectUnchangedOnFree(world, keys);
  });

  it('puts the key back when the first removal was throttled, and releases the customer', async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    let removals = 0;
    const { deps } = tierChangeOver(world, {
      gateway: {
        removeKeyFromPlan: async (planId: string, id: string) => {
          if (++removals === 1) throw throttled('DeleteUsagePlanKey');
          await world.gateway.removeKeyFromPlan(planId, id);
        },
      },
    });

    // Act
    const error = await changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ name: 'TierChangeFailedError', repairNeeded: false });
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    expectUnchangedOnFree(world, [keyId]);
  });

  it('hands the customer to the sweep when a key cannot be put back either', async () => {
    // Prepare
    const world = aWorld();
    const keys = await aRotatedCustomer(world);

    // Act
    const error = await aChangeWhoseRestoreFailed(world);

    // Assess
    expect(error).toBeInstanceOf(TierChangeFailedError);
    expect(error).toMatchObject({ repairNeeded: true });
    // The first key left the old plan and joined none; the second was never touched.
    expect(world.plansOf(keys[0])).toEqual([]);
    expect(world.plansOf(keys[1])).toEqual([TIER_MAP.free]);
    const profile = profileOf(world, 'c1');
    expect(profile).toMatchObject({ tier: 'free', tierHistory: [] });
    expect(profile.lease).toMatchObject({ operation: 'change-tier', tier: 'pro', mustFinish: true, until: world.now });
    expect(profile.repairDueAt).toBe(world.now);
    // Nobody but the sweep may take the customer meanwhile.
    await expect(changeTier(aChange(world, 'pro'), useCases(directPorts(world)).tierChange)).rejects.toMatchObject({
      name: 'CustomerBusyError',
      retryAfterSeconds: UNIT_SETTINGS.sweepSeconds,
    });
  });

  it("is finished by the sweep, which puts every live key into the old tier's plan", async () => {
    // Prepare
    const world = aWorld();
    const keys = await aRotatedCustomer(world);
    await aChangeWhoseRestoreFailed(world);
    world.advance(SWEEP_MS);

    // Act
    const report = await sweep(world);

    // Assess
    expect(report).toMatchObject({ finished: 1, failed: 0 });
    expectOnlyIn(world, keys, TIER_MAP.free);
    expectUnchangedOnFree(world, keys);
  });

  it('hands the moved keys to the sweep when the record fails, and the sweep puts them back', async () => {
    // Prepare
    const world = aWorld();
    const keys = await aRotatedCustomer(world);
    const { deps } = tierChangeOver(world, { ledger: { commit: async () => Promise.reject(throttled('TransactWriteItems')) } });
    const error = await changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientAwsError);
    expectOnlyIn(world, keys, TIER_MAP.pro);
    expect(profileOf(world, 'c1').lease).toMatchObject({ operation: 'change-tier', mustFinish: true, until: world.now });
    world.advance(SWEEP_MS);

    // Act
    const report = await sweep(world);

    // Assess
    expect(report).toMatchObject({ finished: 1, failed: 0 });
    expectOnlyIn(world, keys, TIER_MAP.free);
    expectUnchangedOnFree(world, keys);
  });

  it('is finished by the sweep after a crash between DeleteUsagePlanKey and CreateUsagePlanKey: the key back in exactly the old plan', async () => {
    // Prepare
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const crash = aCrash();
    const { deps } = tierChangeOver(world, {
      gateway: {
        removeKeyFromPlan: async (planId: string, id: string) => {
          await world.gateway.removeKeyFromPlan(planId, id);
          return crash.die();
        },
      },
    });
    void changeTier(aChange(world, 'pro'), deps);
    await crash.reached;
    expect(world.plansOf(keyId)).toEqual([]);
    pastTheLease(world);

    // Act
    const report = await sweep(world);

    // Assess
    expect(report).toMatchObject({ finished: 1, failed: 0 });
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    expectUnchangedOnFree(world, [keyId]);
  });

  it('stops without restoring anything once its lease was lost mid-move', async () => {
    // Prepare: DeleteUsagePlanKey took effect, then the attempt stalls past its lease; the sweep
    // takes the customer over and puts the key back into the plan of the tier on record.
    const world = aWorld();
    const { keyId } = await aRegisteredCustomer(world);
    const gate = aGate();
    const { deps, calls } = tierChangeOver(world, {
      gateway: {
        removeKeyFromPlan: async (planId: string, id: string) => {
          await world.gateway.removeKeyFromPlan(planId, id);
          await gate.pass();
        },
      },
    });
    const change = changeTier(aChange(world, 'pro'), deps).catch((e: unknown) => e);
    await gate.reached;
    pastTheLease(world);
    expect(await sweep(world)).toMatchObject({ finished: 1 });

    // Act
    gate.open();
    const error = await change;

    // Assess
    expect(error).toBeInstanceOf(LeaseLostError);
    // One renewal refused, then nothing: no CreateUsagePlanKey, no restore, no second look at the lease.
    expect(calls).toEqual(['ledger.acquire', 'gateway.removeKeyFromPlan', 'ledger.renew']);
    expectOnlyIn(world, [keyId], TIER_MAP.free);
    expectUnchangedOnFree(world, [keyId]);
  });
});
