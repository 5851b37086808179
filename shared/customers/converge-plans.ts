import { ValidationError } from '../errors';
import type { HeldLease } from '../core/customer-lease';
import type { KeyGateway } from '../core/ports';
import { keyShardOf, planIn, type Shard, type ShardKeys, shardOf } from '../core/shards';

/**
 * Puts each key into the plan of the customer's tier on record, in the key's own shard, and takes
 * it out of every other plan of that shard's stage, whatever an interrupted operation left: a key
 * in no plan, in the wrong one, or in two. Every call is idempotent, so it is safe to repeat.
 * Returns each key's plan.
 */
export async function convergeKeyPlans(
  lease: HeldLease,
  keyIds: readonly string[],
  deps: { keys: ShardKeys<Pick<KeyGateway, 'addKeyToPlan' | 'removeKeyFromPlan'>>; settings: { shards: readonly Shard[] } },
): Promise<Map<string, string>> {
  const tier = lease.customer.tier;
  const planOf = (shard: Shard) => {
    const plan = planIn(shard, tier);
    if (!plan) throw new ValidationError('tier', `the customer's tier "${tier}" has no usage plan`);
    return plan;
  };
  const plans = new Map<string, string>();
  for (const keyId of keyIds) {
    const shard = shardOf(deps.settings.shards, keyShardOf(lease.customer, keyId));
    const keys = deps.keys.in(shard.id);
    const plan = planOf(shard);
    // A key cannot be in two plans of one stage: it leaves the others before it joins.
    for (const planId of new Set(Object.values(shard.plans))) {
      if (planId === plan) continue;
      await lease.ensure();
      await keys.removeKeyFromPlan(planId, keyId);
    }
    await lease.ensure();
    await keys.addKeyToPlan(plan, keyId);
    plans.set(keyId, plan);
  }
  return plans;
}
