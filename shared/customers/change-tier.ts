import { usagePlanOf } from '../config';
import {
  CustomerBusyError,
  CustomerRevokedError,
  LeaseLostError,
  NotFoundError,
  TierChangeFailedError,
  ValidationError,
} from '../errors';
import { logger } from '../logger';
import { countMetric, METRIC } from '../metrics';
import { acquireCustomer, type HeldLease, type LeaseDeps } from '../core/customer-lease';
import type { CustomerRecord } from '../core/customer-record';
import { isLive } from '../core/model';
import type { KeyGateway } from '../core/ports';

export interface TierChangeDeps extends LeaseDeps {
  keys: Pick<KeyGateway, 'addKeyToPlan' | 'removeKeyFromPlan'>;
  settings: LeaseDeps['settings'] & { tierMap: Readonly<Record<string, string>> };
}

export interface TierChangeResult {
  customerId: string;
  from: string;
  to: string;
  changed: boolean;
  keys: { keyId: string; usagePlanId: string }[];
  /** A billing event older than the newest one applied: acknowledged, nothing changed. */
  stale?: boolean | undefined;
}

/**
 * Moves every live key of the customer (ACTIVE and RETIRING) into the usage plan of `tier`:
 * `DeleteUsagePlanKey` from the old plan, then `CreateUsagePlanKey` into the new one. Never
 * `UpdateUsagePlan` (one call per 20 s per account). Four AWS calls for a customer with one key:
 * the lease (which returns the tier and the live keys), the two moves, and the record with the
 * lease's release.
 *
 * The lease is must-finish: should the function die between the two calls of a move, the sweep
 * puts the key back into the plan of the tier on record. If a move fails, every key moved so far
 * goes back to its old plan and the tier stays; a key that cannot be put back is left to the
 * sweep likewise. With `eventAt` (a billing event), the newest event wins: an event older than
 * the one applied last changes nothing.
 *
 * @throws ValidationError for an unknown tier (no AWS call), NotFoundError for an unknown customer
 * @throws CustomerRevokedError; CustomerBusyError while another operation holds the customer (or a
 *   registration is still making its first key)
 * @throws TierChangeFailedError when the move failed (keys restored, or left to the sweep)
 */
export async function changeTier(
  command: { customerId: string; tier: string; requestId: string; now: Date; eventAt?: string | undefined },
  deps: TierChangeDeps,
): Promise<TierChangeResult> {
  const { customerId, tier, now, eventAt } = command;
  const newPlan = usagePlanOf(deps.settings.tierMap, tier);
  if (!newPlan) throw new ValidationError('tier', `unknown tier "${tier}"`);
  const taken = await acquireCustomer(
    customerId,
    { intent: { operation: 'change-tier', tier }, mustFinish: true, status: ['ACTIVE'] },
    deps,
  );
  if (taken.kind === 'refused') throw refusal(taken.customer, deps);
  const { lease } = taken;
  const customer = lease.customer;
  const from = customer.tier;
  const live = Object.entries(customer.keys)
    .filter(([, state]) => isLive(state))
    .map(([keyId]) => keyId);
  const answer = (changed: boolean, planId: string | undefined) => ({
    customerId,
    from,
    to: tier,
    changed,
    keys: live.map((keyId) => ({ keyId, usagePlanId: planId ?? '' })),
  });

  // Strictly older only: EventBridge's `time` has whole seconds, so two changes in one second
  // carry the same time and the one processed last wins; a redelivery of the event applied last
  // asks for the tier the customer already has and changes nothing.
  if (eventAt && customer.tierEventAt && customer.tierEventAt > eventAt) {
    await lease.release();
    logger.warn('tier change event older than the one applied; dropped', {
      customerId,
      eventAt,
      appliedEventAt: customer.tierEventAt,
      cause: command.requestId,
    });
    return { ...answer(false, usagePlanOf(deps.settings.tierMap, from)), to: from, stale: true };
  }
  if (from === tier) {
    // Nothing moves; a billing event is still recorded, so an older one cannot win later.
    if (eventAt) await lease.run(() => lease.commit({ tierEventAt: eventAt }, now), 'release');
    else await lease.release();
    return answer(false, newPlan);
  }
  const oldPlan = usagePlanOf(deps.settings.tierMap, from);

  return lease.run(async () => {
    await moveKeys(lease, live, { from: oldPlan, to: newPlan }, deps);
    await lease.commit(
      {
        tier: { from, to: tier, cause: command.requestId },
        tierEventAt: eventAt,
        items: live.map((keyId) => ({ kind: 'update' as const, keyId, set: { usagePlanId: newPlan, tier } })),
      },
      now,
    );
    logger.info('tier changed', { customerId, from, to: tier, keys: live.length });
    countMetric(METRIC.tierChanges);
    return answer(true, newPlan);
  }, 'abandon');
}

function refusal(customer: CustomerRecord, deps: TierChangeDeps): Error {
  if (customer.status === 'REVOKED') return new CustomerRevokedError(`customer ${customer.customerId} was revoked`);
  if (customer.status === 'PENDING') {
    return new CustomerBusyError(`customer ${customer.customerId} is still being registered`, deps.settings.leaseSeconds);
  }
  return new NotFoundError(`no customer ${customer.customerId}`);
}

/**
 * Moves each key from `plans.from` to `plans.to`. On a failure every key moved so far, and the
 * one that failed, go back; if that works the lease is released and the tier stays, else the
 * lease is abandoned to the sweep, which puts every live key into the plan of the tier on record.
 */
async function moveKeys(
  lease: HeldLease,
  keyIds: readonly string[],
  plans: { from: string | undefined; to: string },
  deps: TierChangeDeps,
): Promise<void> {
  const moved: string[] = [];
  for (const keyId of keyIds) {
    try {
      await lease.ensure();
      // From here until the next call succeeds the key is in no plan: its requests are refused.
      if (plans.from) await deps.keys.removeKeyFromPlan(plans.from, keyId);
      await lease.ensure();
      await deps.keys.addKeyToPlan(plans.to, keyId);
      moved.push(keyId);
    } catch (error) {
      // Taken over: the new holder (the sweep) puts the keys where the record says.
      if (error instanceof LeaseLostError) throw error;
      logger.error('tier change failed; restoring old plans', { customerId: lease.customerId, keyId, error });
      countMetric(METRIC.tierChangesFailed);
      await lease.ensure();
      const restored = await restore([keyId, ...moved], plans, deps);
      if (restored) await lease.release();
      else {
        countMetric(METRIC.keysNeedingRepair);
        await lease.abandon();
      }
      throw new TierChangeFailedError(!restored, { cause: error });
    }
  }
}

async function restore(
  keyIds: readonly string[],
  plans: { from: string | undefined; to: string },
  deps: TierChangeDeps,
): Promise<boolean> {
  if (!plans.from) return false;
  let restored = true;
  for (const keyId of keyIds) {
    try {
      await deps.keys.removeKeyFromPlan(plans.to, keyId);
      await deps.keys.addKeyToPlan(plans.from, keyId);
    } catch (error) {
      restored = false;
      logger.error('key could not be put back into its plan; left to the sweep', { keyId, error });
    }
  }
  return restored;
}
