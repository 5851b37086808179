import { event } from '../core/events';
import { acquireCustomer, type HeldLease, type LeaseDeps } from '../core/customer-lease';
import type { KeyItemWrite } from '../core/customer-record';
import { DAY_MS, DUE, isLive } from '../core/model';
import type { KeyGateway } from '../core/ports';
import { keyShardOf, type ShardKeys } from '../core/shards';
import { CustomerBusyError, NotFoundError } from '../errors';
import { logger } from '../logger';
import { countMetric } from '../metrics';

export interface RevocationDeps extends LeaseDeps {
  keys: ShardKeys<Pick<KeyGateway, 'disableKey'>>;
  settings: LeaseDeps['settings'] & { keyRetentionDays: number };
}

/**
 * Disables every key of the customer at once and records the customer REVOKED; the keys are
 * deleted by the retirement job after the retention period. Repeating it is harmless.
 *
 * The customer is REVOKED from the moment the lease is taken, before any key is disabled: no
 * rotation or tier change starts after that, and a revocation that dies half way is finished by
 * the sweep (its lease is must-finish), never left with an enabled key for rotation to replace.
 *
 * @throws NotFoundError for an unknown customer
 * @throws CustomerBusyError while another operation holds the customer, or a registration is
 *   still making its first key
 */
export async function revokeCustomer(
  command: { customerId: string; now: Date },
  deps: RevocationDeps,
): Promise<{ customerId: string; status: 'REVOKED'; disabledKeyIds: string[] }> {
  const { customerId, now } = command;
  const request = { intent: { operation: 'revoke' }, mustFinish: true, setStatus: 'REVOKED' } as const;
  let taken = await acquireCustomer(customerId, { ...request, status: ['ACTIVE'] }, deps);
  // Revoked before (a repeated request): taken again, so that the answer is the same and anything
  // left live is disabled, but a repeat that disables nothing changes nothing and tells no event.
  const repeat = taken.kind === 'refused' && taken.customer.status === 'REVOKED';
  if (repeat) taken = await acquireCustomer(customerId, { ...request, status: ['REVOKED'] }, deps);
  if (taken.kind === 'refused') {
    if (taken.customer.status === 'PENDING') {
      throw new CustomerBusyError(`customer ${customerId} is still being registered`, deps.settings.leaseSeconds);
    }
    throw new NotFoundError(`no customer ${customerId}`);
  }
  const disabledKeyIds = await finishRevocation(taken.lease, now, deps, { repeat });
  logger.info('customer revoked', { customerId, keys: disabledKeyIds.length });
  countMetric('Revocations');
  return { customerId, status: 'REVOKED', disabledKeyIds };
}

/**
 * Disables every live key of the customer and records them DISABLED (deleted after the retention
 * period) with the customer and its registration REVOKED. Also the sweep's way of finishing a
 * revocation whose holder died.
 */
export async function finishRevocation(
  lease: HeldLease,
  now: Date,
  deps: RevocationDeps,
  options: { repeat?: boolean } = {},
): Promise<string[]> {
  const customer = lease.customer;
  const live = Object.entries(customer.keys)
    .filter(([, state]) => isLive(state))
    .map(([keyId]) => keyId);
  const changed = !options.repeat || live.length > 0;
  const deleteAt = new Date(now.getTime() + deps.settings.keyRetentionDays * DAY_MS).toISOString();
  return lease.run(async () => {
    for (const keyId of live) {
      await lease.ensure();
      await deps.keys.in(keyShardOf(customer, keyId)).disableKey(keyId);
    }
    const items: KeyItemWrite[] = live.map((keyId) => ({
      kind: 'update',
      keyId,
      set: { state: 'DISABLED' },
      due: { type: DUE.delete, at: deleteAt },
    }));
    await lease.commit(
      {
        status: 'REVOKED',
        keys: Object.fromEntries(live.map((keyId) => [keyId, 'DISABLED' as const])),
        items,
        registration: { registrationId: customer.registrationId, state: 'REVOKED' },
        events: changed
          ? [
              event('CustomerRevoked', { keyIds: live }),
              ...live.map((keyId) => event('KeyDisabled', { keyId, reason: 'revoked', shard: keyShardOf(customer, keyId) })),
            ]
          : [],
      },
      now,
    );
    return live;
    // The lease itself marked the customer REVOKED: even a throttled first disable leaves work.
  }, 'abandon', false);
}
