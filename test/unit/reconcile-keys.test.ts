import { singleShard } from '../../shared/core/shards';
import { ShardUnavailableError } from '../../shared/errors';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type {
  AcquireOutcome,
  AcquireRequest,
  CustomerChange,
  CustomerLedger,
  CustomerRecord,
} from '../../shared/core/customer-record';
import { LeaseLostError, TransientAwsError } from '../../shared/errors';
import type { KeyInventory, KeyRecord, KeyRecords, ListedKey, ReconcileDeps } from '../../shared/reconcile/ports';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';

const NOW = new Date('2031-06-01T12:00:00.000Z');
const OLD = new Date('2031-05-01T00:00:00.000Z');
const PLANS = { free: 'plan-free', pro: 'plan-pro' };

/** A key name as keyplan makes them under the prefix `kp`. */
const keyName = (id: string) => `kp-${createHash('sha256').update(id).digest('hex').slice(0, 32)}`;

/** API Gateway in memory: keys, and which plans hold them. */
class FakeInventory implements KeyInventory {
  /** One shard: every shard's keys are these. */
  in(): this {
    return this;
  }

  readonly keys = new Map<string, ListedKey>();
  readonly plans = new Map<string, Set<string>>(Object.values(PLANS).map((id) => [id, new Set<string>()]));
  /** plan id -> error thrown when a key is added to it */
  readonly refuseAdding = new Map<string, Error>();

  addManaged(id: string, planId?: string, createdAt = OLD, tags: Record<string, string> = {}) {
    this.keys.set(id, { id, name: keyName(id), createdAt, tags: { 'keyplan:managed': 'true', 'keyplan:customer': 'c1', ...tags } });
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
  async closeRecord(key: KeyRecord, state: 'DELETED' | 'MISSING') {
    if (this.items.get(key.keyId)?.state === key.state) this.items.set(key.keyId, { ...key, state });
  }
}

/** The customer records: each customer's tier and key list, from the key items; a lease per customer. */
class FakeLedger implements CustomerLedger {
  readonly held = new Set<string>();
  readonly owners = new Map<string, string>();
  constructor(private readonly records: FakeRecords) {}

  #record(customerId: string): CustomerRecord | undefined {
    const tier = this.records.tiers.get(customerId);
    if (!tier) return undefined;
    const keys: Record<string, 'ACTIVE' | 'RETIRING' | 'DISABLED'> = {};
    for (const item of this.records.items.values()) {
      if (item.customerId === customerId && ['ACTIVE', 'RETIRING', 'DISABLED'].includes(item.state)) {
        keys[item.keyId] = item.state as 'ACTIVE';
      }
    }
    return { customerId, email: `${customerId}@example.com`, tier, status: 'ACTIVE', registrationId: customerId, keys, version: 1 };
  }
  async acquire(customerId: string, request: AcquireRequest): Promise<AcquireOutcome> {
    const customer = this.#record(customerId);
    if (!customer) return { kind: 'not-found' };
    if (this.held.has(customerId)) {
      return { kind: 'busy', holder: { owner: 'someone', operation: 'rotate', until: NOW.getTime() + 30_000, mustFinish: true } };
    }
    this.owners.set(customerId, request.owner);
    return { kind: 'acquired', customer };
  }
  async renew() {
    return true;
  }
  async commit(customerId: string, owner: string, change: CustomerChange) {
    if (this.owners.get(customerId) !== owner) throw new LeaseLostError('lost', 1);
    this.owners.delete(customerId);
    for (const write of change.items ?? []) {
      if (write.kind !== 'update') continue;
      const item = this.records.items.get(write.keyId);
      if (item) this.records.items.set(write.keyId, { ...item, ...write.set, needsRepair: undefined });
    }
  }
  async release(customerId: string, owner: string) {
    if (this.owners.get(customerId) === owner) this.owners.delete(customerId);
  }
  async abandon(customerId: string, owner: string) {
    await this.release(customerId, owner);
  }
  async findInterrupted() {
    return [];
  }
  async place() {
    return 'placed' as const;
  }
}

function fakes() {
  const inventory = new FakeInventory();
  const records = new FakeRecords();
  const ledger = new FakeLedger(records);
  const deps: ReconcileDeps = {
    inventory,
    records,
    ledger,
    registrations: { getRegistration: async () => undefined },
    clock: () => NOW,
    settings: { keyNamePrefix: 'kp', stage: 'test', shards: singleShard(PLANS), minKeyAgeMinutes: 60, leaseSeconds: 60, sweepSeconds: 300 },
  };
  return { inventory, records, lock: ledger, deps };
}

describe('reconcileKeys', () => {
  it('reconciles the shards it can reach and leaves one whose role is refused to the next run', async () => {
    // Arrange: an orphan in each of two shards; the second one's role cannot be assumed.
    const { inventory, deps } = fakes();
    const unreachable = new FakeInventory();
    unreachable.addManaged('orphan-far');
    unreachable.listKeyPages = async function* () {
      yield [];
      throw new ShardUnavailableError('far', { cause: new Error('AccessDenied') });
    };
    inventory.addManaged('orphan-home');
    const twoShards = [...singleShard(PLANS), { id: 'far', plans: PLANS, keyCeiling: 10_000, state: 'accepting' as const }];
    const sharded: ReconcileDeps = {
      ...deps,
      inventory: { in: (shard) => (shard === 'far' ? unreachable : inventory) },
      settings: { ...deps.settings, shards: twoShards },
    };

    // Act
    const report = await reconcileKeys({ now: NOW, dryRun: false }, sharded);

    // Assert
    expect(report.shards.map((shard) => [shard.shard, shard.unavailable ?? false])).toEqual([
      ['home', false],
      ['far', true],
    ]);
    expect(report.failures).toBe(1);
    expect(report.done['delete-orphan']).toBe(1);
    expect(inventory.keys.has('orphan-home')).toBe(false);
    expect(unreachable.keys.has('orphan-far')).toBe(true);
  });

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
    inventory.keys.set('theirs', { id: 'theirs', name: keyName('theirs'), createdAt: OLD, tags: {} });
    inventory.keys.set('other-prefix', {
      id: 'other-prefix',
      name: 'kpx-1',
      createdAt: OLD,
      tags: { 'keyplan:managed': 'true' },
    });
    // Another stage whose prefix starts with ours (kp-dev), and a key tagged with another stage.
    inventory.keys.set('longer-prefix', {
      id: 'longer-prefix',
      name: `kp-dev-${'a'.repeat(32)}`,
      createdAt: OLD,
      tags: { 'keyplan:managed': 'true', 'keyplan:customer': 'c9' },
    });
    inventory.addManaged('other-stage', undefined, OLD, { 'keyplan:stage': 'prod' });

    const report = await reconcileKeys({ now: NOW, dryRun: false }, deps);

    expect(report.actions).toEqual([]);
    expect([...inventory.keys.keys()].sort()).toEqual(['longer-prefix', 'other-prefix', 'other-stage', 'retired', 'theirs']);
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
