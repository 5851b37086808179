import { singleShard } from '../../shared/core/shards';
import { describe, expect, it } from 'vitest';
import { DAY_MS, type CustomerKey } from '../../shared/core/model';
import type { NewKeySpec } from '../../shared/core/ports';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import {
  AssociationRejectedError,
  CustomerBusyError,
  LeaseLostError,
  NotFoundError,
  RotationIncompleteError,
  TransientAwsError,
  ValidationError,
} from '../../shared/errors';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { rotateKey } from '../../shared/rotation/rotate-key';
import { retireDueKeys, rotateCustomerKeys, rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import {
  aCrash,
  aGate,
  aRegisteredCustomer,
  aWorld,
  emailsCarrying,
  itemOf,
  LEASE_MS,
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
 * rotateKey and the scheduled rotation and retirement over the in-memory world: every failure
 * branch of the rotation, judged by what API Gateway, the table and SES hold afterwards. A crash
 * is a call that never settles (the Lambda died); the sweep then finishes what it left.
 */

const GRACE_DAYS = UNIT_SETTINGS.graceDays;
const SWEEP_MS = UNIT_SETTINGS.sweepSeconds * 1000;
const at = (from: Date, ms: number) => new Date(from.getTime() + ms).toISOString();

/** The rotation's deps over the world's ports, some methods replaced; every call recorded. */
function rotationOver(world: InMemoryWorld, overrides: PortOverrides = {}) {
  const { ports, calls } = recordingPorts(world, overrides);
  return { deps: useCases(ports).rotation, calls, ports };
}

const direct = (world: InMemoryWorld) => useCases(directPorts(world));

/** The one successor a rotation of `old` made, wherever it got. */
function theSuccessorOf(world: InMemoryWorld, old: CustomerKey) {
  const successors = successorsOf(world, old.keyId);
  expect(successors).toHaveLength(1);
  const [successor] = successors;
  if (!successor) throw new Error('no successor');
  return successor;
}

/** The old key still the customer's: ACTIVE in its list and on its item, enabled, in its plan. */
function expectStillActive(world: InMemoryWorld, old: CustomerKey) {
  expect(profileOf(world, old.customerId).keys[old.keyId]).toBe('ACTIVE');
  expect(itemOf(world, old.customerId, old.keyId)).toMatchObject({ state: 'ACTIVE', due: { type: 'ROTATE', at: old.rotateAt } });
  expect(world.apiKeys.get(old.keyId)?.enabled).toBe(true);
  expect(world.plansOf(old.keyId)).toEqual([TIER_MAP.free]);
}

/** The rotation recorded: the successor ACTIVE and emailed, the old key RETIRING, the customer free. */
function expectRotatedTo(world: InMemoryWorld, old: CustomerKey, successorId: string) {
  const profile = profileOf(world, old.customerId);
  expect(profile.keys).toEqual({ [old.keyId]: 'RETIRING', [successorId]: 'ACTIVE' });
  expect(profile.emailedKeyId).toBe(successorId);
  expect(profile.lease).toBeUndefined();
  expect(profile.repairDueAt).toBeUndefined();
  expect(itemOf(world, old.customerId, old.keyId)).toMatchObject({ state: 'RETIRING', successorKeyId: successorId });
  expect(itemOf(world, old.customerId, successorId)).toMatchObject({ state: 'ACTIVE', usagePlanId: TIER_MAP.free, generation: 2 });
  expect(world.plansOf(successorId)).toEqual([TIER_MAP.free]);
}

/** The customer's lease handed to the sweep: must-finish, expired now, in the REPAIR partition. */
function expectAbandoned(world: InMemoryWorld, customerId: string, old: CustomerKey) {
  const profile = profileOf(world, customerId);
  expect(profile.lease).toMatchObject({ operation: 'rotate', keyId: old.keyId, mustFinish: true, until: world.now });
  expect(profile.repairDueAt).toBe(world.now);
}

/** A tier change of c1 that died between DeleteUsagePlanKey and CreateUsagePlanKey: c1 held, must finish. */
async function aTierChangeThatDiedMidMove(world: InMemoryWorld) {
  const crash = aCrash();
  const { ports } = recordingPorts(world, {
    gateway: {
      removeKeyFromPlan: async (planId: string, keyId: string) => {
        await world.gateway.removeKeyFromPlan(planId, keyId);
        return crash.die();
      },
    },
  });
  void changeTier({ customerId: 'c1', tier: 'pro', requestId: 'tier-1', now: world.clock() }, useCases(ports).tierChange);
  await crash.reached;
}

const failedEmail = async (): Promise<void> => {
  throw new Error('simulated SES failure (MessageRejected)');
};

describe('rotateKey', () => {
  it('issues a successor in the tier plan, emails it, retires the old key after the grace and releases the customer, in five calls', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps, calls } = rotationOver(world);
    const now = world.clock();

    // Act
    const result = await rotateKey(old, { now, graceDays: GRACE_DAYS }, deps);

    // Assess
    const successor = theSuccessorOf(world, old);
    const retireAt = at(now, GRACE_DAYS * DAY_MS);
    expect(result).toEqual({ outcome: 'rotated', oldKeyId: old.keyId, newKeyId: successor.id, retireAt });
    expectRotatedTo(world, old, successor.id);
    expect(itemOf(world, 'c1', old.keyId)).toMatchObject({
      retireAt,
      // The reminder comes first, reminderDays before the old key stops working.
      due: { type: 'REMIND', at: at(now, (GRACE_DAYS - UNIT_SETTINGS.reminderDays) * DAY_MS) },
    });
    expect(itemOf(world, 'c1', successor.id)).toMatchObject({
      tier: 'free',
      rotateAt: at(now, UNIT_SETTINGS.rotationDays * DAY_MS),
      due: { type: 'ROTATE', at: at(now, UNIT_SETTINGS.rotationDays * DAY_MS) },
    });
    // The old key keeps working through its grace.
    expect(world.apiKeys.get(old.keyId)?.enabled).toBe(true);
    expect(world.plansOf(old.keyId)).toEqual([TIER_MAP.free]);
    const emails = emailsCarrying(world, successor.id);
    expect(emails).toHaveLength(1);
    expect(emails[0]).toMatchObject({ to: 'c1@example.com' });
    expect(emails[0]?.text).toContain(`fingerprint ${old.fingerprint}`);
    // The plan's limits are a read the adapter caches: not counted.
    expect(writesAmong(calls)).toEqual(['ledger.acquire', 'gateway.ensureKey', 'gateway.addKeyToPlan', 'mailer.send', 'ledger.commit']);
  });

  it('with a grace of 0 disables the old key as soon as the successor is recorded', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const now = world.clock();

    // Act
    const result = await rotateKey(old, { now, graceDays: 0 }, direct(world).rotation);

    // Assess
    const successor = theSuccessorOf(world, old);
    expect(result).toMatchObject({ outcome: 'rotated', newKeyId: successor.id, retireAt: now.toISOString() });
    expect(world.apiKeys.get(old.keyId)?.enabled).toBe(false);
    expect(world.apiKeys.get(successor.id)?.enabled).toBe(true);
    const profile = profileOf(world, 'c1');
    expect(profile.keys).toEqual({ [old.keyId]: 'DISABLED', [successor.id]: 'ACTIVE' });
    expect(profile.emailedKeyId).toBe(successor.id);
    expect(profile.lease).toBeUndefined();
    expect(itemOf(world, 'c1', old.keyId)).toMatchObject({
      state: 'DISABLED',
      due: { type: 'DELETE', at: at(now, UNIT_SETTINGS.keyRetentionDays * DAY_MS) },
    });
  });

  it('with a grace of 0 whose disable fails still rotates, and leaves the old key due for the retirement job', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps } = rotationOver(world, { gateway: { disableKey: async () => Promise.reject(throttled('UpdateApiKey')) } });
    const now = world.clock();

    // Act
    const result = await rotateKey(old, { now, graceDays: 0 }, deps);
    const retirement = await retireDueKeys(world.clock(), 10, direct(world).rotation);

    // Assess
    const successor = theSuccessorOf(world, old);
    expect(result).toMatchObject({ outcome: 'rotated', newKeyId: successor.id });
    expect(retirement).toMatchObject({ disabled: 1, failed: 0 });
    expect(world.apiKeys.get(old.keyId)?.enabled).toBe(false);
    expect(profileOf(world, 'c1').keys).toEqual({ [old.keyId]: 'DISABLED', [successor.id]: 'ACTIVE' });
    expect(profileOf(world, 'c1').lease).toBeUndefined();
  });

  it('skips a customer who is no longer ACTIVE without an AWS call', async () => {
    // Prepare: the key was found due before the customer was revoked.
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    await revokeCustomer({ customerId: 'c1', now: world.clock() }, direct(world).revocation);
    const { deps, calls } = rotationOver(world);

    // Act
    const result = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps);

    // Assess
    expect(result).toEqual({ outcome: 'skipped', oldKeyId: old.keyId, reason: 'customer-not-active' });
    expect(calls).toEqual(['ledger.acquire']);
    expect(successorsOf(world, old.keyId)).toEqual([]);
    expect(world.emails).toHaveLength(1);
    expect(profileOf(world, 'c1')).toMatchObject({ status: 'REVOKED', keys: { [old.keyId]: 'DISABLED' }, lease: undefined });
  });

  it('skips a key that is no longer ACTIVE (a repeated schedule event) without an AWS call', async () => {
    // Prepare: a first delivery rotated the key.
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, direct(world).rotation);
    const { deps, calls } = rotationOver(world);

    // Act
    const result = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps);

    // Assess
    expect(result).toEqual({ outcome: 'skipped', oldKeyId: old.keyId, reason: 'not-active' });
    expect(calls).toEqual(['ledger.acquire']);
    const successor = theSuccessorOf(world, old);
    expect(emailsCarrying(world, successor.id)).toHaveLength(1);
    expectRotatedTo(world, old, successor.id);
  });

  it('answers busy with the seconds the holder has left while another operation holds the customer', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    await aTierChangeThatDiedMidMove(world);
    world.advance(20_000);
    const { deps, calls } = rotationOver(world);

    // Act
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(CustomerBusyError);
    expect(error).toMatchObject({ name: 'CustomerBusyError', retryAfterSeconds: LEASE_MS / 1000 - 20 });
    expect(calls).toEqual(['ledger.acquire']);
    expect(successorsOf(world, old.keyId)).toEqual([]);
    expect(profileOf(world, 'c1').lease).toMatchObject({ operation: 'change-tier' });
  });

  it("answers busy with the sweep's period when the holder died with work to finish", async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    await aTierChangeThatDiedMidMove(world);
    pastTheLease(world);
    const { deps, calls } = rotationOver(world);

    // Act
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(CustomerBusyError);
    expect(error).toMatchObject({ retryAfterSeconds: UNIT_SETTINGS.sweepSeconds });
    expect(calls).toEqual(['ledger.acquire']);
    expect(successorsOf(world, old.keyId)).toEqual([]);
    expect(profileOf(world, 'c1').lease).toMatchObject({ operation: 'change-tier', mustFinish: true });
  });

  it('refuses a customer whose tier has no usage plan any more, and releases it', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps, calls } = rotationOver(world);
    const withoutFree = { ...deps, settings: { ...deps.settings, shards: singleShard({ pro: TIER_MAP.pro }) } };

    // Act
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, withoutFree).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    expect(calls).toEqual(['ledger.acquire', 'ledger.release']);
    expect(successorsOf(world, old.keyId)).toEqual([]);
    expect(profileOf(world, 'c1').lease).toBeUndefined();
    expect(profileOf(world, 'c1').repairDueAt).toBeUndefined();
  });

  it('releases the customer and leaves nothing when AWS throttled the create', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps, calls } = rotationOver(world, { gateway: { ensureKey: async () => Promise.reject(throttled('CreateApiKey')) } });

    // Act
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(TransientAwsError);
    expect(error).toMatchObject({ notApplied: true });
    expect(calls).toEqual(['ledger.acquire', 'gateway.ensureKey', 'ledger.release']);
    expect(successorsOf(world, old.keyId)).toEqual([]);
    expect(world.emails).toHaveLength(1);
    expectStillActive(world, old);
    expect(profileOf(world, 'c1').lease).toBeUndefined();
    expect(profileOf(world, 'c1').repairDueAt).toBeUndefined();
  });

  it('hands a create whose outcome is unknown to the sweep, which adopts the key it made', async () => {
    // Prepare: CreateApiKey took effect, then its answer was lost (a 5xx).
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps } = rotationOver(world, {
      gateway: {
        ensureKey: async (spec: NewKeySpec, options: { lookupFirst: boolean }) => {
          await world.gateway.ensureKey(spec, options);
          throw new TransientAwsError('CreateApiKey failed (simulated 5xx)', 1);
        },
      },
    });
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientAwsError);
    expectAbandoned(world, 'c1', old);
    const made = theSuccessorOf(world, old);
    world.advance(SWEEP_MS);

    // Act
    const report = await sweep(world);

    // Assess
    expect(report).toMatchObject({ finished: 1, failed: 0 });
    expect(theSuccessorOf(world, old).id).toBe(made.id);
    expectRotatedTo(world, old, made.id);
    expect(emailsCarrying(world, made.id)).toHaveLength(1);
  });

  it('deletes a successor it made when the plan refuses it, and releases the customer', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps, calls } = rotationOver(world, {
      gateway: { addKeyToPlan: async () => Promise.reject(new AssociationRejectedError('simulated: the plan refused the key')) },
    });

    // Act
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RotationIncompleteError);
    expect(writesAmong(calls)).toEqual(['ledger.acquire', 'gateway.ensureKey', 'gateway.addKeyToPlan', 'gateway.deleteKey', 'ledger.release']);
    expect(successorsOf(world, old.keyId)).toEqual([]);
    expect([...world.apiKeys.keys()]).toEqual([old.keyId]);
    expect(world.emails).toHaveLength(1);
    expectStillActive(world, old);
    expect(profileOf(world, 'c1').keys).toEqual({ [old.keyId]: 'ACTIVE' });
    expect(profileOf(world, 'c1').lease).toBeUndefined();
    expect(profileOf(world, 'c1').repairDueAt).toBeUndefined();
  });

  it('keeps a successor an earlier attempt made when the plan refuses it, and leaves the rotation to the sweep', async () => {
    // Prepare: the first attempt died right after CreateApiKey; the sweep resumes it, and the plan refuses.
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const crash = aCrash();
    const { deps } = rotationOver(world, {
      gateway: {
        ensureKey: async (spec: NewKeySpec, options: { lookupFirst: boolean }) => {
          await world.gateway.ensureKey(spec, options);
          return crash.die();
        },
      },
    });
    void rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps);
    await crash.reached;
    const made = theSuccessorOf(world, old);
    pastTheLease(world);
    const { ports: refusing, calls } = recordingPorts(world, {
      gateway: { addKeyToPlan: async () => Promise.reject(new AssociationRejectedError('simulated: the plan refused the key')) },
    });

    // Act
    const report = await sweep(world, refusing);

    // Assess
    expect(report).toMatchObject({ finished: 0, failed: 1 });
    expect(calls).not.toContain('gateway.deleteKey');
    expect(theSuccessorOf(world, old).id).toBe(made.id);
    expect(world.apiKeys.get(made.id)?.enabled).toBe(true);
    expect(world.emails).toHaveLength(1);
    expectStillActive(world, old);
    expectAbandoned(world, 'c1', old);
  });

  it('leaves the old key ACTIVE and the rotation to the sweep when the email fails', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps } = rotationOver(world, { mailer: { send: failedEmail } });

    // Act
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RotationIncompleteError);
    expectStillActive(world, old);
    const successor = theSuccessorOf(world, old);
    expect(profileOf(world, 'c1').keys).toEqual({ [old.keyId]: 'ACTIVE' });
    expect(profileOf(world, 'c1').emailedKeyId).toBe(old.keyId);
    expect(itemOf(world, 'c1', successor.id)).toBeUndefined();
    expect(emailsCarrying(world, successor.id)).toEqual([]);
    expectAbandoned(world, 'c1', old);
    // Nobody but the sweep may take the customer meanwhile.
    await expect(rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, direct(world).rotation)).rejects.toMatchObject({
      name: 'CustomerBusyError',
      retryAfterSeconds: UNIT_SETTINGS.sweepSeconds,
    });
  });

  it('is finished by the sweep after a failed email: the same successor emailed and recorded', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps } = rotationOver(world, { mailer: { send: failedEmail } });
    await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch(() => undefined);
    const made = theSuccessorOf(world, old);
    world.advance(SWEEP_MS);

    // Act
    const report = await sweep(world);

    // Assess
    expect(report).toMatchObject({ finished: 1, failed: 0 });
    expect(theSuccessorOf(world, old).id).toBe(made.id);
    expectRotatedTo(world, old, made.id);
    expect(emailsCarrying(world, made.id)).toHaveLength(1);
    expect(itemOf(world, 'c1', old.keyId)).toMatchObject({ retireAt: at(world.clock(), GRACE_DAYS * DAY_MS) });
  });

  it('is finished by the sweep after a crash between the email and the commit: one successor, recorded, emailed', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const crash = aCrash();
    const { deps } = rotationOver(world, {
      mailer: {
        send: async (email) => {
          await world.mailer.send(email);
          return crash.die();
        },
      },
    });
    void rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps);
    await crash.reached;
    pastTheLease(world);

    // Act
    const report = await sweep(world);

    // Assess
    expect(report).toMatchObject({ finished: 1, failed: 0 });
    const successor = theSuccessorOf(world, old);
    expectRotatedTo(world, old, successor.id);
    // At least once: the crashed attempt's email may have arrived, the sweep's surely did.
    expect(emailsCarrying(world, successor.id).length).toBeGreaterThanOrEqual(1);
  });

  it('stops before the email once its lease ran out and the sweep took the customer over', async () => {
    // Prepare: the attempt waits in CreateUsagePlanKey while its lease runs out and the sweep resumes the rotation.
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const gate = aGate();
    const { deps, calls } = rotationOver(world, {
      gateway: {
        addKeyToPlan: async (planId: string, keyId: string) => {
          await gate.pass();
          await world.gateway.addKeyToPlan(planId, keyId);
        },
      },
    });
    const rotation = rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);
    await gate.reached;
    pastTheLease(world);
    expect(await sweep(world)).toMatchObject({ finished: 1 });
    const successor = theSuccessorOf(world, old);

    // Act
    gate.open();
    const error = await rotation;

    // Assess
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(calls).not.toContain('mailer.send');
    expect(calls).not.toContain('ledger.commit');
    expect(emailsCarrying(world, successor.id)).toHaveLength(1);
    expectRotatedTo(world, old, successor.id);
  });

  it('hands the rotation to the sweep when the commit fails, and the sweep records it', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps } = rotationOver(world, { ledger: { commit: async () => Promise.reject(throttled('TransactWriteItems')) } });
    const error = await rotateKey(old, { now: world.clock(), graceDays: GRACE_DAYS }, deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientAwsError);
    const made = theSuccessorOf(world, old);
    expect(emailsCarrying(world, made.id)).toHaveLength(1);
    expect(profileOf(world, 'c1').keys).toEqual({ [old.keyId]: 'ACTIVE' });
    expectAbandoned(world, 'c1', old);
    world.advance(SWEEP_MS);

    // Act
    const report = await sweep(world);

    // Assess
    expect(report).toMatchObject({ finished: 1, failed: 0 });
    expect(theSuccessorOf(world, old).id).toBe(made.id);
    expectRotatedTo(world, old, made.id);
    expect(emailsCarrying(world, made.id).length).toBeGreaterThanOrEqual(1);
  });
});

describe('rotateDueKeys', () => {
  it('counts a customer another operation holds as busy and leaves its key due', async () => {
    // Prepare: c1 is held by a tier change that died; c2 is free.
    const world = aWorld();
    const held = await aRegisteredCustomer(world, 'c1', 'free');
    const free = await aRegisteredCustomer(world, 'c2', 'pro');
    await aTierChangeThatDiedMidMove(world);
    const schedule = new Date(world.now + (UNIT_SETTINGS.rotationDays + 1) * DAY_MS);

    // Act
    const report = await rotateDueKeys(schedule, 10, direct(world).rotation);

    // Assess
    expect(report).toEqual({ rotated: 1, skipped: 0, busy: 1, failed: 0, remaining: 1 });
    expect(successorsOf(world, held.keyId)).toEqual([]);
    expect(itemOf(world, 'c1', held.keyId)).toMatchObject({ state: 'ACTIVE', due: { type: 'ROTATE', at: held.rotateAt } });
    expect(profileOf(world, 'c1').lease).toMatchObject({ operation: 'change-tier' });
    expect(successorsOf(world, free.keyId)).toHaveLength(1);
  });

  it('counts a rotation that failed as failed and leaves its key due', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const { deps } = rotationOver(world, { gateway: { ensureKey: async () => Promise.reject(throttled('CreateApiKey')) } });
    const schedule = new Date(world.now + (UNIT_SETTINGS.rotationDays + 1) * DAY_MS);

    // Act
    const report = await rotateDueKeys(schedule, 10, deps);

    // Assess
    expect(report).toEqual({ rotated: 0, skipped: 0, busy: 0, failed: 1, remaining: 1 });
    expectStillActive(world, old);
    expect(profileOf(world, 'c1').lease).toBeUndefined();
  });
});

describe('rotateCustomerKeys', () => {
  it('answers not found for a customer without keys, before taking any lease', async () => {
    // Prepare
    const world = aWorld();
    const { deps, calls } = rotationOver(world);

    // Act
    const error = await rotateCustomerKeys('nobody', { now: world.clock() }, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(calls).toEqual(['keyTable.keysOf']);
  });
});

describe('retireDueKeys', () => {
  it('reminds, disables the old key once its grace is over, and deletes it after the retention', async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    const now = world.clock();
    await rotateKey(old, { now, graceDays: GRACE_DAYS }, direct(world).rotation);
    const successor = theSuccessorOf(world, old);
    const afterGrace = new Date(now.getTime() + (GRACE_DAYS + 1) * DAY_MS);
    const afterRetention = new Date(afterGrace.getTime() + (UNIT_SETTINGS.keyRetentionDays + 1) * DAY_MS);

    // Act
    const first = await retireDueKeys(afterGrace, 10, direct(world).rotation);
    const disabled = { enabled: world.apiKeys.get(old.keyId)?.enabled, item: { ...itemOf(world, 'c1', old.keyId) } };
    const second = await retireDueKeys(afterRetention, 10, direct(world).rotation);

    // Assess
    expect(first).toEqual({ reminded: 1, disabled: 1, deleted: 0, busy: 0, failed: 0 });
    expect(disabled).toMatchObject({
      enabled: false,
      item: { state: 'DISABLED', due: { type: 'DELETE', at: at(afterGrace, UNIT_SETTINGS.keyRetentionDays * DAY_MS) } },
    });
    expect(world.emails.filter((email) => email.to === 'c1@example.com' && email.keyValues.length === 0)).toHaveLength(1);
    expect(second).toEqual({ reminded: 0, disabled: 0, deleted: 1, busy: 0, failed: 0 });
    expect(world.apiKeys.has(old.keyId)).toBe(false);
    expect(itemOf(world, 'c1', old.keyId)).toMatchObject({ state: 'DELETED', due: undefined });
    expect(profileOf(world, 'c1').keys).toEqual({ [successor.id]: 'ACTIVE' });
    expect(profileOf(world, 'c1').lease).toBeUndefined();
    expect(world.apiKeys.get(successor.id)?.enabled).toBe(true);
    expect(world.plansOf(successor.id)).toEqual([TIER_MAP.free]);
  });

  it('never deletes the newest key emailed to a customer who is not revoked', async () => {
    // Prepare: revoked, then re-activated by a registration whose email is still owed: the
    // disabled key is still the one the customer was told of last.
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    await revokeCustomer({ customerId: 'c1', now: world.clock() }, direct(world).revocation);
    const { ports } = recordingPorts(world, { mailer: { send: failedEmail } });
    await provisionKey(
      { registrationId: 'c1-r1', request: { customerId: 'c1', email: 'c1@example.com', tier: 'free', reactivate: true }, now: world.clock() },
      useCases(ports).provisioning,
    );
    expect(profileOf(world, 'c1')).toMatchObject({ status: 'ACTIVE', emailedKeyId: old.keyId, keys: { [old.keyId]: 'DISABLED' } });
    const afterRetention = new Date(world.now + (UNIT_SETTINGS.keyRetentionDays + 1) * DAY_MS);

    // Act
    const report = await retireDueKeys(afterRetention, 10, direct(world).rotation);

    // Assess
    expect(report).toMatchObject({ deleted: 0, failed: 0 });
    expect(world.apiKeys.has(old.keyId)).toBe(true);
    expect(itemOf(world, 'c1', old.keyId)).toMatchObject({ state: 'DISABLED', due: { type: 'DELETE' } });
    expect(profileOf(world, 'c1').keys[old.keyId]).toBe('DISABLED');
    expect(profileOf(world, 'c1').lease).toBeUndefined();
  });

  it("deletes a revoked customer's keys after the retention, the last one emailed too", async () => {
    // Prepare
    const world = aWorld();
    const old = await aRegisteredCustomer(world);
    await revokeCustomer({ customerId: 'c1', now: world.clock() }, direct(world).revocation);
    const afterRetention = new Date(world.now + (UNIT_SETTINGS.keyRetentionDays + 1) * DAY_MS);

    // Act
    const report = await retireDueKeys(afterRetention, 10, direct(world).rotation);

    // Assess
    expect(report).toMatchObject({ deleted: 1, failed: 0 });
    expect(world.apiKeys.has(old.keyId)).toBe(false);
    expect(itemOf(world, 'c1', old.keyId)).toMatchObject({ state: 'DELETED' });
    expect(profileOf(world, 'c1')).toMatchObject({ status: 'REVOKED', keys: {}, lease: undefined });
  });
});
