import { describe, expect, it, vi } from 'vitest';
import { DAY_MS } from '../../shared/core/model';
import type { CustomerKey } from '../../shared/core/model';
import { findStalledRegistrations, MAX_RESUME_ATTEMPTS, resumeStalledRegistrations } from '../../shared/provisioning/resume-registrations';
import { findDueRetirements, findDueRotations, retireDueKeys } from '../../shared/rotation/rotation-jobs';
import type { DrainDeps } from '../../shared/shards/drain-shard';
import type { ShardRegistry } from '../../shared/shards/ports';
import { previewScheduledRotation, runScheduledRotation } from '../../shared/shards/scheduled-rotation';
import { findInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import { previewSweep, runSweep } from '../../shared/sweep/sweep';
import { aQueuedCustomer, aRegisteredCustomer, aWorld, itemOf, MINUTE_MS, UNIT_SETTINGS, useCases } from '../support/in-memory-fixtures';
import { START } from '../support/in-memory-model';
import { directPorts } from '../support/in-memory-scheduling';
import type { InMemoryWorld } from '../support/in-memory-world';

/*
 * The dry runs of `keyplan jobs run`: each reads what its job's run would take, as of the
 * schedule's time, and changes nothing. The strongest check of a preview is the run right after
 * it: the run must act on exactly the keys and registrations the preview listed.
 */

const after = (days: number, ms = 0) => new Date(START.getTime() + days * DAY_MS + ms);
const ids = (keys: readonly { keyId: string }[]) => keys.map((key) => key.keyId).sort();

/** An empty shard registry: a world of one shard never reads it. */
const noRegistry: ShardRegistry = {
  describe: async () => [],
  setState: async () => undefined,
  activeKeysIn: async () => [],
};

function deps(world: InMemoryWorld, overrides: { keyRetentionDays?: number } = {}) {
  const cases = useCases(directPorts(world));
  const settings = { ...UNIT_SETTINGS, ...overrides };
  return {
    rotation: { ...cases.rotation, settings },
    drain: { ...cases.rotation, settings, registry: noRegistry } satisfies DrainDeps,
    sweep: { ...cases.finish, ...cases.provisioning, stalled: world.registrationTable, settings },
  };
}

/** Three customers registered a minute apart, their keys due for rotation 90 days later. */
async function threeCustomers() {
  const world = aWorld();
  const keys: CustomerKey[] = [];
  for (const customerId of ['c1', 'c2', 'c3']) keys.push(await aRegisteredCustomer(world, customerId));
  return { world, keys };
}

describe('findDueRotations and previewScheduledRotation', () => {
  it('list nothing before the keys are due', async () => {
    // Prepare
    const { world } = await threeCustomers();

    // Act
    const preview = await previewScheduledRotation(after(89), 50, deps(world).drain);

    // Assess
    expect(preview).toEqual({ batchSize: 50, due: { keys: [], totalDue: 0 }, drains: [] });
  });

  it('list the oldest due keys, one batch of them, and every key due; the run then rotates exactly those', async () => {
    // Prepare
    const { world, keys } = await threeCustomers();
    const at = after(91);
    const trace = world.trace.length;

    // Act
    const preview = await previewScheduledRotation(at, 2, deps(world).drain);

    // Assess: c1 and c2's keys (the oldest), three due in all; nothing changed
    expect(preview.due).toEqual({
      keys: keys.slice(0, 2).map((key) => ({
        keyId: key.keyId,
        customerId: key.customerId,
        shard: 'home',
        state: 'ACTIVE',
        rotateAt: key.rotateAt,
        retireAt: undefined,
      })),
      totalDue: 3,
    });
    expect(world.trace.slice(trace)).toEqual([]);

    // Act + Assess: the run takes the same two
    const report = await runScheduledRotation(at, 2, deps(world).drain);
    expect(report).toMatchObject({ rotated: 2, failed: 0, remaining: 1 });
    const retiring = keys.filter((key) => itemOf(world, key.customerId, key.keyId)?.state === 'RETIRING');
    expect(ids(retiring)).toEqual(ids(preview.due.keys));
  });

  it("list each draining shard's next keys with what the batch leaves, and read no shard when the due keys fill it", async () => {
    // Prepare: two shards, home draining; one key due
    const { world, keys } = await threeCustomers();
    const activeKeysIn = vi.fn<ShardRegistry['activeKeysIn']>(async () => keys.slice(1));
    const registry: ShardRegistry = {
      ...noRegistry,
      describe: async () => [
        { shardId: 'home', placedKeys: 3, state: 'draining' },
        { shardId: 'west', placedKeys: 0 },
      ],
      activeKeysIn,
    };
    const shards = [...UNIT_SETTINGS.shards, { id: 'west', plans: UNIT_SETTINGS.shards[0].plans, keyCeiling: 10_000, state: 'accepting' as const }];
    const drainDeps = { ...deps(world).drain, registry, settings: { ...UNIT_SETTINGS, shards } };
    world.keyTable.findDue = async () => [keys[0]!];
    world.keyTable.countDue = async () => 1;

    // Act
    const preview = await previewScheduledRotation(after(91), 3, drainDeps);
    const full = await previewScheduledRotation(after(91), 1, drainDeps);

    // Assess
    expect(ids(preview.due.keys)).toEqual([keys[0]!.keyId]);
    expect(preview.drains).toEqual([{ shard: 'home', keys: keys.slice(1).map((key) => expect.objectContaining({ keyId: key.keyId })) }]);
    expect(activeKeysIn).toHaveBeenCalledExactlyOnceWith('home', { home: true, limit: 2 });
    expect(full.drains).toEqual([]);
  });

  it('findDueRotations counts what the batch leaves out', async () => {
    // Prepare
    const { world } = await threeCustomers();

    // Act
    const due = await findDueRotations(after(91), 1, deps(world).rotation);

    // Assess
    expect(due.keys).toHaveLength(1);
    expect(due.totalDue).toBe(3);
  });
});

describe('findDueRetirements', () => {
  /** c1's key rotated on day 91: retiring until day 98, its reminder due on day 96. */
  async function aRotatedKey(overrides: { keyRetentionDays?: number } = {}) {
    const world = aWorld();
    const old = await aRegisteredCustomer(world, 'c1');
    await runScheduledRotation(after(91), 50, deps(world, overrides).drain);
    return { world, old, rotatedAt: after(91), d: deps(world, overrides) };
  }

  it('lists nothing during the grace, before the reminder', async () => {
    // Prepare
    const { rotatedAt, d } = await aRotatedKey();

    // Act
    const due = await findDueRetirements(new Date(rotatedAt.getTime() + 4 * DAY_MS), 100, d.rotation);

    // Assess
    expect(due).toEqual({ remind: { keys: [], totalDue: 0 }, retire: { keys: [], totalDue: 0 }, delete: { keys: [], totalDue: 0 } });
  });

  it('lists the reminder alone while the grace lasts', async () => {
    // Prepare
    const { world, old, rotatedAt, d } = await aRotatedKey();
    const at = new Date(rotatedAt.getTime() + 5 * DAY_MS + MINUTE_MS);

    // Act
    const due = await findDueRetirements(at, 100, d.rotation);

    // Assess
    expect(ids(due.remind.keys)).toEqual([old.keyId]);
    expect(due.retire).toEqual({ keys: [], totalDue: 0 });
    await expect(retireDueKeys(at, 100, d.rotation)).resolves.toMatchObject({ reminded: 1, disabled: 0 });
    expect(itemOf(world, 'c1', old.keyId)?.state).toBe('RETIRING');
  });

  it('lists a reminded key whose grace is over where the same run disables it, as the run then does', async () => {
    // Prepare
    const { world, old, rotatedAt, d } = await aRotatedKey();
    const at = new Date(rotatedAt.getTime() + 8 * DAY_MS);

    // Act
    const due = await findDueRetirements(at, 100, d.rotation);

    // Assess
    expect(due.remind).toMatchObject({ keys: [{ keyId: old.keyId, state: 'RETIRING', retireAt: after(98).toISOString() }], totalDue: 1 });
    expect(due.retire).toMatchObject({ keys: [{ keyId: old.keyId }], totalDue: 1 });
    expect(due.delete).toEqual({ keys: [], totalDue: 0 });
    await expect(retireDueKeys(at, 100, d.rotation)).resolves.toMatchObject({ reminded: 1, disabled: 1, deleted: 0 });
    expect(itemOf(world, 'c1', old.keyId)?.state).toBe('DISABLED');
  });

  it('lists a disabled key for deletion after the retention, and at once in the run that disables it with no retention', async () => {
    // Prepare
    const kept = await aRotatedKey();
    const unkept = await aRotatedKey({ keyRetentionDays: 0 });
    const graceOver = new Date(kept.rotatedAt.getTime() + 8 * DAY_MS);
    await retireDueKeys(graceOver, 100, kept.d.rotation);

    // Act
    const retained = await findDueRetirements(new Date(graceOver.getTime() + 29 * DAY_MS), 100, kept.d.rotation);
    const expired = await findDueRetirements(new Date(graceOver.getTime() + 30 * DAY_MS), 100, kept.d.rotation);
    const atOnce = await findDueRetirements(graceOver, 100, unkept.d.rotation);

    // Assess
    expect(retained.delete.keys).toEqual([]);
    expect(ids(expired.delete.keys)).toEqual([kept.old.keyId]);
    expect(ids(atOnce.retire.keys)).toEqual([unkept.old.keyId]);
    expect(atOnce.delete).toMatchObject({ keys: [{ keyId: unkept.old.keyId }], totalDue: 1 });
    await expect(retireDueKeys(graceOver, 100, unkept.d.rotation)).resolves.toMatchObject({ disabled: 1, deleted: 1 });
  });
});

describe('findStalledRegistrations, findInterruptedOperations and previewSweep', () => {
  it('list the registrations due as of the time given, with what the sweep would do, as the run then does', async () => {
    // Prepare: two queued registrations; c2 out of resume attempts
    const world = aWorld();
    await aQueuedCustomer(world, 'c1');
    await aQueuedCustomer(world, 'c2');
    world.registrations.get('c2-r0')!.resumeAttempts = MAX_RESUME_ATTEMPTS;
    const d = deps(world).sweep;
    const at = new Date(START.getTime() + 60 * MINUTE_MS);

    // Act
    const now = await findStalledRegistrations(START, 100, d);
    const later = await findStalledRegistrations(at, 100, d);

    // Assess
    expect(now).toEqual([]);
    expect(later).toEqual([
      expect.objectContaining({ registrationId: 'c1-r0', customerId: 'c1', state: 'QUEUED', resumeAttempts: 0, action: 'resume' }),
      expect.objectContaining({ registrationId: 'c2-r0', customerId: 'c2', resumeAttempts: MAX_RESUME_ATTEMPTS, action: 'give-up' }),
    ]);
    await expect(resumeStalledRegistrations(at, 100, d)).resolves.toMatchObject({ resumed: 1, givenUp: 1 });
  });

  it('judge interrupted operations by the clock, whatever time the run is as of, as the sweep does', async () => {
    // Prepare: c1's rotation holds a must-finish lease (alive); c2's died and gave up its lease
    const world = aWorld();
    const alive = await aRegisteredCustomer(world, 'c1');
    const dead = await aRegisteredCustomer(world, 'c2');
    const rotation = (keyId: string) => ({ operation: 'rotate' as const, keyId, graceDays: 7 });
    const until = world.now + 60_000;
    await world.ledger.acquire('c1', { owner: 'alive', until, intent: rotation(alive.keyId), mustFinish: true }, world.clock());
    await world.ledger.acquire('c2', { owner: 'dead', until, intent: rotation(dead.keyId), mustFinish: true }, world.clock());
    await world.ledger.abandon('c2', 'dead', world.clock());
    world.advance(1_000);
    const d = deps(world).sweep;

    // Act
    const interrupted = await findInterruptedOperations(10, d);
    const preview = await previewSweep(after(100), 10, d);

    // Assess: only c2, even as of 100 days later; the run finishes c2's rotation and leaves c1's holder alone
    expect(interrupted).toEqual([{ customerId: 'c2', operation: 'rotate', keyId: dead.keyId }]);
    expect(preview).toEqual({ batchSize: 10, registrations: [], interrupted });
    await expect(runSweep(after(100), 10, d)).resolves.toMatchObject({ interrupted: { finished: 1, nothingLeft: 0, busy: 0 } });
    expect(itemOf(world, 'c2', dead.keyId)?.state).toBe('RETIRING');
    expect(itemOf(world, 'c1', alive.keyId)?.state).toBe('ACTIVE');
  });
});
