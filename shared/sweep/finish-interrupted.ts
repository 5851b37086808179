import { event } from '../core/events';
import { acquireCustomer } from '../core/customer-lease';
import type { InterruptedLease, LeaseIntent } from '../core/customer-record';
import { isLive } from '../core/model';
import { convergeKeyPlans } from '../customers/converge-plans';
import { finishRevocation, type RevocationDeps } from '../customers/revoke-customer';
import type { TierChangeDeps } from '../customers/change-tier';
import { CustomerBusyError, NoShardCapacityError } from '../errors';
import { logger } from '../logger';
import { type RotationDeps, rotateUnderLease } from '../rotation/rotate-key';

export type FinishDeps = RotationDeps & TierChangeDeps & RevocationDeps;

export interface FinishRunReport {
  finished: number;
  /** The lease had been released meanwhile, or nothing was left to do. */
  nothingLeft: number;
  busy: number;
  failed: number;
}

/**
 * The sweep's second half: customers whose operation died (or gave up) holding a must-finish
 * lease. Nobody else may take such a lease; the sweep takes it over, with the same intent, and
 * finishes the work: a rotation is resumed (its successor found by name, emailed again, recorded),
 * a tier change or a reconciler's repair puts every live key into the plan of the tier on record,
 * a revocation disables what is left. Until then the customer answers 409 customer-busy.
 */
export async function finishInterruptedOperations(now: Date, limit: number, deps: FinishDeps): Promise<FinishRunReport> {
  const report: FinishRunReport = { finished: 0, nothingLeft: 0, busy: 0, failed: 0 };
  for (const listed of await deps.ledger.findInterrupted(deps.clock(), limit)) {
    const { customerId } = listed;
    try {
      report[(await finishOne(listed, now, deps)) ? 'finished' : 'nothingLeft']++;
    } catch (error) {
      if (error instanceof CustomerBusyError) report.busy++;
      // A drain's move that died before its target had a place made nothing: with no place now,
      // the customer stays where it is (lease released) for the drain's next step.
      else if (error instanceof NoShardCapacityError) report.nothingLeft++;
      else {
        report.failed++;
        logger.error('finishing an interrupted operation failed; the next sweep tries again', { customerId, error });
      }
    }
  }
  logger.info('interrupted operations sweep finished', { ...report });
  return report;
}

async function finishOne({ customerId, owner, intent: listed }: InterruptedLease, now: Date, deps: FinishDeps): Promise<boolean> {
  // The sweep lists customers first and takes them over one by one: by then the operation it
  // listed may have finished and another one may hold the customer. Only the lease it listed is
  // taken over (its owner is the condition), so the intent written with the sweep's lease is
  // that lease's own, even should the sweep die at once; a lease that changed meanwhile is
  // refused (or busy) and left to the next run.
  const taken = await acquireCustomer(
    customerId,
    { intent: listed ?? { operation: 'repair' }, mustFinish: true, takeOverInterrupted: { owner } },
    deps,
  );
  if (taken.kind === 'refused') return false;
  const { lease } = taken;
  // A registration's lease (a re-activation's) is finished by the registration's own next
  // attempt only; any other is finished as what it is, as its holder recorded it (a plan repair
  // in place of a rotation would leave the rotation's emailed successor an orphan).
  if (!lease.interrupted || lease.interrupted.operation === 'register') {
    await lease.release();
    return false;
  }
  const { owner: _owner, until: _until, mustFinish: _mustFinish, ...intent } = lease.interrupted;
  const customer = lease.customer;
  logger.info('finishing an interrupted operation', { customerId, operation: intent.operation, keyId: intent.keyId });
  switch (intent.operation) {
    case 'rotate': {
      const old = (await deps.keyStore.keysOf(customerId)).find((key) => key.keyId === intent.keyId);
      if (!old || customer.keys[old.keyId] !== 'ACTIVE' || customer.status !== 'ACTIVE') break;
      await rotateUnderLease(lease, old, { now, graceDays: intent.graceDays ?? deps.settings.graceDays, resumed: true, toShard: intent.toShard }, deps);
      return true;
    }
    case 'revoke':
      // A revocation marks the customer REVOKED with its lease: any other status means the intent
      // is one a sweep listed before the customer moved on (a re-activation took it since).
      if (customer.status !== 'REVOKED') break;
      await finishRevocation(lease, now, deps);
      return true;
    case 'change-tier':
    case 'reconcile':
    case 'repair': {
      if (customer.status === 'REVOKED') {
        await finishRevocation(lease, now, deps);
        return true;
      }
      const live = Object.entries(customer.keys)
        .filter(([, state]) => isLive(state))
        .map(([keyId]) => keyId);
      await lease.run(async () => {
        const plans = await convergeKeyPlans(lease, live, deps);
        await lease.commit(
          {
            items: live.map((keyId) => ({ kind: 'update' as const, keyId, set: { usagePlanId: plans.get(keyId), tier: customer.tier } })),
            events: live.map((keyId) =>
              event('KeyRepaired', { keyId, usagePlanId: plans.get(keyId), tier: customer.tier, cause: intent.operation }),
            ),
          },
          now,
        );
      }, 'abandon');
      return true;
    }
    default:
      break;
  }
  await lease.release();
  return false;
}

/** A customer whose operation died holding its lease, as a dry run shows it. */
export interface InterruptedOperation {
  customerId: string;
  /** What the sweep would finish: the lease's intent (none recorded: a repair of the plans). */
  operation: LeaseIntent['operation'];
  keyId?: string | undefined;
}

/**
 * What finishInterruptedOperations would take, changing nothing: the same read, at most `limit`
 * customers whose must-finish lease has expired. By the clock, as the run judges it whatever
 * time it is run as: a lease is a time of the clock, and one still held is its holder's.
 */
export async function findInterruptedOperations(
  limit: number,
  deps: { ledger: Pick<FinishDeps['ledger'], 'findInterrupted'>; clock: () => Date },
): Promise<InterruptedOperation[]> {
  return (await deps.ledger.findInterrupted(deps.clock(), limit)).map(({ customerId, intent }) => ({
    customerId,
    operation: intent?.operation ?? 'repair',
    keyId: intent?.keyId,
  }));
}
