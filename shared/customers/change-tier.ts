import { event } from '../core/events';
import {
  CustomerBusyError,
  CustomerRevokedError,
  LeaseLostError,
  NotFoundError,
  TierChangeFailedError,
  ValidationError,
} from '../errors';
import { logger } from '../logger';
import { countMetric } from '../metrics';
import { acquireCustomer, type HeldLease, type LeaseDeps } from '../core/customer-lease';
import type { CustomerRecord } from '../core/customer-record';
import { isLive } from '../core/model';
import type { KeyGateway } from '../core/ports';
import { keyShardOf, planIn, type Shard, type ShardKeys, shardOf } from '../core/shards';

export interface TierChangeDeps extends LeaseDeps {
  keys: ShardKeys<Pick<KeyGateway, 'addKeyToPlan' | 'removeKeyFromPlan'>>;
  settings: LeaseDeps['settings'] & { shards: readonly Shard[] };
}

/** A live key with its shard, and the plans of the old and the new tier there. */
interface KeyMove {
  keyId: string;
  shard: string;
  from: string | undefined;
  to: string;
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
  // Every shard offers the same tiers (the configuration checks): the home shard's decide.
  if (!planIn(shardOf(deps.settings.shards, undefined), tier)) throw new ValidationError('tier', `unknown tier "${tier}"`);
  const taken = await acquireCustomer(
    customerId,
    { intent: { operation: 'change-tier', tier }, mustFinish: true, status: ['ACTIVE'] },
    deps,
  );
  if (taken.kind === 'refused') throw refusal(taken.customer, deps);
  const { lease } = taken;
  const customer = lease.customer;
  const from = customer.tier;
  const moves: KeyMove[] = Object.entries(customer.keys)
    .filter(([, state]) => isLive(state))
    .map(([keyId]) => {
      const shard = shardOf(deps.settings.shards, keyShardOf(customer, keyId));
      return { keyId, shard: shard.id, from: planIn(shard, from), to: planIn(shard, tier)! };
    });
  const answer = (changed: boolean, plan: 'from' | 'to') => ({
    customerId,
    from,
    to: tier,
    changed,
    keys: moves.map((move) => ({ keyId: move.keyId, usagePlanId: move[plan] ?? '' })),
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
    return { ...answer(false, 'from'), to: from, stale: true };
  }
  if (from === tier) {
    // Nothing moves; a billing event is still recorded, so an older one cannot win later.
    if (eventAt) await lease.run(() => lease.commit({ tierEventAt: eventAt }, now), 'release');
    else await lease.release();
    return answer(false, 'to');
  }

  return lease.run(async () => {
    await moveKeys(lease, moves, deps);
    await lease.commit(
      {
        tier: { from, to: tier, cause: command.requestId },
        tierEventAt: eventAt,
        events: [
          event('TierChanged', {
            from,
            to: tier,
            cause: command.requestId,
            eventAt,
            keyIds: moves.map((move) => move.keyId),
          }),
        ],
        items: moves.map((move) => ({ kind: 'update' as const, keyId: move.keyId, set: { usagePlanId: move.to, tier } })),
      },
      now,
    );
    logger.info('tier changed', { customerId, from, to: tier, keys: moves.length });
    countMetric('TierChanges');
    return answer(true, 'to');
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
 * Moves each key from its old plan to its new one, in its own shard. On a failure every key moved so far, and the
 * one that failed, go back; if that works the lease is released and the tier stays, else the
 * lease is abandoned to the sweep, which puts every live key into the plan of the tier on record.
 */
async function moveKeys(lease: HeldLease, moves: readonly KeyMove[], deps: TierChangeDeps): Promise<void> {
  const moved: KeyMove[] = [];
  for (const move of moves) {
    const { keyId } = move;
    const keys = deps.keys.in(move.shard);
    try {
      await lease.ensure();
      // From here until the next call succeeds the key is in no plan: its requests are refused.
      if (move.from) await keys.removeKeyFromPlan(move.from, keyId);
      await lease.ensure();
      await keys.addKeyToPlan(move.to, keyId);
      moved.push(move);
    } catch (error) {
      // Taken over: the new holder (the sweep) puts the keys where the record says.
      if (error instanceof LeaseLostError) throw error;
      logger.error('tier change failed; restoring old plans', { customerId: lease.customerId, keyId, error });
      countMetric('TierChangesFailed');
      await lease.ensure();
      const restored = await restore([move, ...moved], deps);
      if (restored) await lease.release();
      else {
        countMetric('KeysNeedingRepair');
        await lease.abandon();
      }
      throw new TierChangeFailedError(!restored, { cause: error });
    }
  }
}

async function restore(moves: readonly KeyMove[], deps: TierChangeDeps): Promise<boolean> {
  let restored = true;
  for (const { keyId, shard, from, to } of moves) {
    if (!from) return false;
    try {
      await deps.keys.in(shard).removeKeyFromPlan(to, keyId);
      await deps.keys.in(shard).addKeyToPlan(from, keyId);
    } catch (error) {
      restored = false;
      logger.error('key could not be put back into its plan; left to the sweep', { keyId, error });
    }
  }
  return restored;
}
