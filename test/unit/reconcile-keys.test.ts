import { describe, expect, it } from 'vitest';
import type { CustomerLock } from '../../shared/customers/ports';
import { TransientAwsError } from '../../shared/errors';
import type { KeyInventory, KeyRecord, KeyRecords, ListedKey, ReconcileDeps } from '../../shared/reconcile/ports';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';

const NOW = new Date('2031-06-01T12:00:00.000Z');
const OLD = new Date('2031-05-01T00:00:00.000Z');
const PLANS = { free: 'plan-free', pro: 'plan-pro' };

/** API Gateway in memory: keys, and which plans hold them. */
class FakeInventory implements KeyInventory {
  readonly keys = new Map<string, ListedKey>();
  readonly plans = new Map<string, Set<string>>(Object.values(PLANS).map((id) => [id, new Set<string>()]));
  /** plan id -> error thrown when a key is added to it */
  readonly refuseAdding = new Map<string, Error>();

  addManaged(id: string, planId?: string, createdAt = OLD) {
    this.keys.set(id, { id, name: `kp-${id}`, createdAt, tags: { 'keyplan:managed': 'true' } });
    if (planId) this.plans.get(planId)?.add(id);
  }
  plansOf(keyId: string) {
    return [...this.plans].filter(([, keys]) => keys.has(keyId)).map(([id]) => id);
  }
  async *listKeyPages() {
    const all = [...this.keys.values()];
    for (let start = 0; start < all.length; start += 500) yield all.slice(start, start + 500);
  }
  async keysInPlan(usagePlanId: string) {
    return [...(this.plans.get(usagePlanId) ?? [])];
  }
  async keyExists(keyId: string) {
    return this.keys.has(keyId);
  }
  async addKeyToPlan(usagePlanId: string, keyId: string) {
    const refusal = this.refuseAdding.get(usagePlanId);
    if (refusal) throw refusal;
    this.plans.get(usagePlanId)?.add(keyId);
  }
  async removeKeyFromPlan(usagePlanId: string, keyId: string) {
    this.plans.get(usagePlanId)?.delete(keyId);
  }
  async deleteKey(keyId: string) {
    this.keys.delete(keyId);
    for (const keys of this.plans.values()) keys.delete(keyId);
  }
}

class FakeRecords implements KeyRecords {
  readonly items = new Map<string, KeyRecord>();
  readonly tiers = new Map<string, string>();

  add(keyId: string, customerId: string, tier: keyof typeof PLANS, state: KeyRecord['state'] = 'ACTIVE') {
    this.tiers.set(customerId, tier);
    this.items.set(keyId, {
      keyId,
      customerId,
      tier,
      state,
      usagePlanId: PLANS[tier],
      registrationId: customerId,
      createdAt: OLD.toISOString(),
      generation: 1,
    });
  }
  async *trackedKeyPages() {
    yield [...this.items.values()];
  }
  async tiersOf(customerIds: readonly string[]) {
    return new Map(customerIds.flatMap((id) => (this.tiers.has(id) ? [[id, String(this.tiers.get(id))] as const] : [])));
  }
  async recordRepaired(key: KeyRecord, usagePlanId: string, tier: string) {
    this.items.set(key.keyId, { ...key, usagePlanId, tier, needsRepair: undefined });
  }
  async recordOrphanDeleted(key: KeyRecord) {
    this.items.set(key.keyId, { ...key, state: 'DELETED' });
  }
  async recordKeyMissing(key: KeyRecord) {
    this.items.set(key.keyId, { ...key, state: 'MISSING' });
  }
}

class FakeLock implements CustomerLock {
  readonly held = new Set<string>();
  async acquire(customerId: string) {
    return this.held.has(customerId) ? { acquired: false as const, retryAfterSeconds: 30 } : { acquired: true as const };
  }
  async release() {}
}

function fakes() {
  const inventory = new FakeInventory();
  const records = new FakeRecords();
  const lock = new FakeLock();
  const deps: ReconcileDeps = {
    inventory,
    records,
    lock,
    settings: { keyNamePrefix: 'kp', tierMap: PLANS, minKeyAgeMinutes: 60, leaseSeconds: 60 },
  };
  return { inventory, records, lock, deps };
}

describe('reconcileKeys', () => {
  it('warns from 80% of the 10,000-key ceiling, counting keys it does not manage', async () => {
    const { inventory, deps } = fakes();
    for (let i = 0; i < 7_999; i++) {
      inventory.keys.set(`other-${i}`, { id: `other-${i}`, name: `other-${i}`, createdAt: OLD, tags: {} });
    }

    const below = await reconcileKeys({ now: NOW, dryRun: true }, deps);
    inventory.addManaged('k1', PLANS.free);
    const at = await reconcileKeys({ now: NOW, dryRun: true }, deps);

    expect(below).toMatchObject({ accountKeys: 7_999, nearCeiling: false, managedKeys: 0 });
    expect(at).toMatchObject({ accountKeys: 8_000, nearCeiling: true, ceilingUsedPercent: 80, managedKeys: 1 });
  });

  it('follows the tier of the customer profile, not the tier copied onto the key item', async () => {
    const { inventory, records, deps } = fakes();
    inventory.addManaged('k1', PLANS.free);
    records.add('k1', 'c1', 'free');
    records.tiers.set('c1', 'pro');

    const report = await reconcileKeys({ now: NOW, dryRun: false }, deps);

    expect(report.done['repair-plan']).toBe(1);
    expect(inventory.plansOf('k1')).toEqual([PLANS.pro]);
    expect(records.items.get('k1')).toMatchObject({ usagePlanId: PLANS.pro, tier: 'pro' });
  });

  it('puts a key back into its old plan when the right one refuses it, and counts the failure', async () => {
    const { inventory, records, deps } = fakes();
    inventory.addManaged('k1', PLANS.free);
    records.add('k1', 'c1', 'pro');
    inventory.refuseAdding.set(PLANS.pro, new TransientAwsError('CreateUsagePlanKey failed: TooManyRequestsException', 5));

    const report = await reconcileKeys({ now: NOW, dryRun: false }, deps);

    expect(report).toMatchObject({ failures: 1 });
    expect(report.done['repair-plan']).toBe(0);
    expect(inventory.plansOf('k1')).toEqual([PLANS.free]);
    expect(records.items.get('k1')).toMatchObject({ usagePlanId: PLANS.pro });
  });

  it('leaves a customer whose lock is held to the next run and carries on with the others', async () => {
    const { inventory, records, lock, deps } = fakes();
    inventory.addManaged('k1');
    records.add('k1', 'busy', 'free');
    inventory.addManaged('k2');
    records.add('k2', 'idle', 'free');
    lock.held.add('busy');

    const report = await reconcileKeys({ now: NOW, dryRun: false }, deps);

    expect(report).toMatchObject({ busy: 1, failures: 0 });
    expect(inventory.plansOf('k1')).toEqual([]);
    expect(inventory.plansOf('k2')).toEqual([PLANS.free]);
  });

  it('keeps going after a failed repair', async () => {
    const { inventory, records, deps } = fakes();
    inventory.addManaged('k1');
    records.add('k1', 'c1', 'pro');
    inventory.refuseAdding.set(PLANS.pro, new Error('boom'));
    inventory.addManaged('orphan');

    const report = await reconcileKeys({ now: NOW, dryRun: false }, deps);

    expect(report).toMatchObject({ failures: 1 });
    expect(report.done['delete-orphan']).toBe(1);
    expect(inventory.keys.has('orphan')).toBe(false);
  });

  it('leaves disabled keys to retirement and keys it does not manage alone', async () => {
    const { inventory, records, deps } = fakes();
    inventory.addManaged('retired');
    records.add('retired', 'c1', 'free', 'DISABLED');
    inventory.keys.set('theirs', { id: 'theirs', name: 'kp-theirs', createdAt: OLD, tags: {} });
    inventory.keys.set('other-prefix', {
      id: 'other-prefix',
      name: 'kpx-1',
      createdAt: OLD,
      tags: { 'keyplan:managed': 'true' },
    });

    const report = await reconcileKeys({ now: NOW, dryRun: false }, deps);

    expect(report.actions).toEqual([]);
    expect([...inventory.keys.keys()].sort()).toEqual(['other-prefix', 'retired', 'theirs']);
  });

  it('does not mark a record missing while its key still exists under another listing', async () => {
    const { inventory, records, deps } = fakes();
    // Made after the listing, or under another prefix: not listed as managed, but it exists.
    inventory.keys.set('k1', { id: 'k1', name: 'elsewhere', createdAt: OLD, tags: {} });
    records.add('k1', 'c1', 'free');

    const report = await reconcileKeys({ now: NOW, dryRun: false }, deps);

    expect(report.actions).toEqual([]);
    expect(records.items.get('k1')?.state).toBe('ACTIVE');
  });
});
