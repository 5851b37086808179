import { usagePlanOf } from '../config';
import { ValidationError } from '../errors';
import type { HeldLease } from '../core/customer-lease';
import type { KeyGateway } from '../core/ports';

/**
 * Puts each key into the plan of the customer's tier on record and takes it out of every other
 * plan of the stage, whatever an interrupted operation left: a key in no plan, in the wrong one,
 * or in two. Every call is idempotent, so it is safe to repeat. Returns the plan.
 */
export async function convergeKeyPlans(
  lease: HeldLease,
  keyIds: readonly string[],
  deps: { keys: Pick<KeyGateway, 'addKeyToPlan' | 'removeKeyFromPlan'>; settings: { tierMap: Readonly<Record<string, string>> } },
): Promise<string> {
  const target = usagePlanOf(deps.settings.tierMap, lease.customer.tier);
  if (!target) throw new ValidationError('tier', `the customer's tier "${lease.customer.tier}" has no usage plan`);
  const others = [...new Set(Object.values(deps.settings.tierMap))].filter((planId) => planId !== target);
  for (const keyId of keyIds) {
    // A key cannot be in two plans of one stage: it leaves the others before it joins.
    for (const planId of others) {
      await lease.ensure();
      await deps.keys.removeKeyFromPlan(planId, keyId);
    }
    await lease.ensure();
    await deps.keys.addKeyToPlan(target, keyId);
  }
  return target;
}
