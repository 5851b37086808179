import { DAY_MS } from '../aws/table-keys';
import { NotFoundError } from '../errors';
import { logger } from '../logger';
import { countMetric, METRIC } from '../metrics';
import type { KeyGateway, RegistrationStore } from '../provisioning/ports';
import type { KeyStore } from '../rotation/ports';
import type { CustomerLock, CustomerStore } from './ports';
import { withCustomerLock } from './with-customer-lock';

export interface RevocationDeps {
  keys: KeyGateway;
  store: RegistrationStore;
  keyStore: KeyStore;
  customers: CustomerStore;
  lock: CustomerLock;
  settings: { leaseSeconds: number; keyRetentionDays: number };
}

/**
 * Disables every key of the customer at once and records the customer REVOKED; the keys are
 * deleted by the retirement job after the retention period. Repeating it is harmless.
 *
 * @throws NotFoundError for an unknown customer
 * @throws CustomerBusyError while a rotation or tier change holds the customer
 */
export async function revokeCustomer(
  command: { customerId: string; now: Date },
  deps: RevocationDeps,
): Promise<{ customerId: string; status: 'REVOKED'; disabledKeyIds: string[] }> {
  const { customerId, now } = command;
  const customer = await deps.store.getCustomer(customerId);
  if (!customer) throw new NotFoundError(`no customer ${customerId}`);

  return withCustomerLock(
    deps.lock,
    { customerId, operation: 'revoke', leaseSeconds: deps.settings.leaseSeconds, now },
    async () => {
      const deleteAt = new Date(now.getTime() + deps.settings.keyRetentionDays * DAY_MS).toISOString();
      const live = (await deps.keyStore.keysOf(customerId)).filter((key) => key.state === 'ACTIVE' || key.state === 'RETIRING');
      for (const key of live) {
        // Disable first: a crash after it leaves a disabled key the next attempt records.
        await deps.keys.disableKey(key.keyId);
        await deps.customers.markRevokedKey(key, deleteAt, now);
      }
      await deps.customers.markCustomerRevoked(customerId, customer.registrationId, now);
      logger.info('customer revoked', { customerId, keys: live.length });
      countMetric(METRIC.revocations);
      return { customerId, status: 'REVOKED' as const, disabledKeyIds: live.map((key) => key.keyId) };
    },
  );
}
