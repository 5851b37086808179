import { CustomerRevokedError, NotFoundError, TierChangeFailedError, ValidationError } from '../errors';
import { usagePlanOf } from '../config';
import { logger } from '../logger';
import { countMetric, METRIC } from '../metrics';
import type { KeyGateway, RegistrationStore } from '../provisioning/ports';
import type { CustomerKey } from '../provisioning/registration';
import type { KeyStore } from '../rotation/ports';
import type { CustomerLock, CustomerStore } from './ports';
import { withCustomerLock } from './with-customer-lock';

export interface TierChangeDeps {
  keys: KeyGateway;
  store: RegistrationStore;
  keyStore: KeyStore;
  customers: CustomerStore;
  lock: CustomerLock;
  settings: { tierMap: Readonly<Record<string, string>>; leaseSeconds: number };
}

export interface TierChangeResult {
  customerId: string;
  from: string;
  to: string;
  changed: boolean;
  keys: { keyId: string; usagePlanId: string }[];
}

const isLive = (key: CustomerKey) => key.state === 'ACTIVE' || key.state === 'RETIRING';

/**
 * Moves every live key of the customer (ACTIVE and RETIRING) into the usage plan of `tier`:
 * `DeleteUsagePlanKey` from the old plan, then `CreateUsagePlanKey` into the new one. Never
 * `UpdateUsagePlan` (one call per 20 s per account). If a move fails, every key moved so far goes
 * back to its old plan and the tier stays; a key that cannot be put back is recorded for repair.
 *
 * @throws ValidationError for an unknown tier, NotFoundError for an unknown customer (no AWS call)
 * @throws CustomerBusyError while a rotation, revocation or another tier change holds the customer
 * @throws TierChangeFailedError when the move failed (keys restored, or recorded for repair)
 */
export async function changeTier(
  command: { customerId: string; tier: string; requestId: string; now: Date },
  deps: TierChangeDeps,
): Promise<TierChangeResult> {
  const { customerId, tier, requestId, now } = command;
  const newPlan = usagePlanOf(deps.settings.tierMap, tier);
  if (!newPlan) throw new ValidationError('tier', `unknown tier "${tier}"`);
  const customer = await deps.store.getCustomer(customerId);
  if (!customer) throw new NotFoundError(`no customer ${customerId}`);
  if (customer.status === 'REVOKED') throw new CustomerRevokedError(`customer ${customerId} was revoked`);

  return withCustomerLock(
    deps.lock,
    { customerId, operation: 'change-tier', leaseSeconds: deps.settings.leaseSeconds, now },
    async () => {
      const live = (await deps.keyStore.keysOf(customerId)).filter(isLive);
      const toMove = live.filter((key) => key.usagePlanId !== newPlan);
      const from = customer.tier;
      if (toMove.length === 0 && from === tier) {
        return { customerId, from, to: tier, changed: false, keys: live.map((k) => ({ keyId: k.keyId, usagePlanId: k.usagePlanId })) };
      }
      const moved: CustomerKey[] = [];
      for (const key of toMove) {
        try {
          await moveKey(key, newPlan, tier, now, deps);
          moved.push(key);
        } catch (error) {
          logger.error('tier change failed; restoring old plans', { customerId, keyId: key.keyId, error });
          const repairNeeded = !(await restore({ failed: key, moved }, newPlan, now, deps));
          countMetric(METRIC.tierChangesFailed);
          throw new TierChangeFailedError(repairNeeded, { cause: error });
        }
      }
      await deps.customers.recordTierChange(customerId, { from, to: tier, requestId }, now);
      logger.info('tier changed', { customerId, from, to: tier, keys: live.length });
      countMetric(METRIC.tierChanges);
      return { customerId, from, to: tier, changed: true, keys: live.map((k) => ({ keyId: k.keyId, usagePlanId: newPlan })) };
    },
  );
}

async function moveKey(key: CustomerKey, newPlan: string, tier: string, now: Date, deps: TierChangeDeps) {
  // From here until the next call succeeds the key is in no plan: its requests are refused.
  await deps.keys.removeKeyFromPlan(key.usagePlanId, key.keyId);
  await deps.keys.addKeyToPlan(newPlan, key.keyId);
  await deps.customers.setPlan(key, newPlan, tier, now);
}

/**
 * Puts keys back into their old plan (`key` is as it was read before the move): the key whose
 * move failed is in no plan, the ones moved before it are in the new plan. Returns false when one
 * could not be put back; it is then recorded for repair.
 */
async function restore(
  keys: { failed: CustomerKey; moved: CustomerKey[] },
  newPlan: string,
  now: Date,
  deps: TierChangeDeps,
): Promise<boolean> {
  let restored = true;
  for (const key of [keys.failed, ...keys.moved]) {
    try {
      if (key !== keys.failed) await deps.keys.removeKeyFromPlan(newPlan, key.keyId);
      await deps.keys.addKeyToPlan(key.usagePlanId, key.keyId);
      await deps.customers.setPlan(key, key.usagePlanId, key.tier, now);
    } catch (error) {
      restored = false;
      logger.error('key could not be put back into its plan; recorded for repair', {
        customerId: key.customerId,
        keyId: key.keyId,
        error,
      });
      await deps.customers.markNeedsRepair(key, key.usagePlanId, now);
      countMetric(METRIC.keysNeedingRepair);
    }
  }
  return restored;
}
