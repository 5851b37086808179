import { randomUUID } from 'node:crypto';
import { CustomerBusyError } from '../errors';
import { logger } from '../logger';
import type { CustomerLock } from './ports';

/**
 * Runs `work` holding the customer's lock, so a tier change, a rotation and a revocation of one
 * customer never interleave. The lease outlasts the function's timeout; a holder that dies
 * leaves the lock to expire.
 * @throws CustomerBusyError (409 with Retry-After, or a retry from the queue) when it is held
 */
export async function withCustomerLock<T>(
  lock: CustomerLock,
  request: { customerId: string; operation: string; leaseSeconds: number; now: Date },
  work: () => Promise<T>,
): Promise<T> {
  const owner = `${request.operation}-${randomUUID()}`;
  const taken = await lock.acquire(
    request.customerId,
    { owner, operation: request.operation, leaseSeconds: request.leaseSeconds },
    request.now,
  );
  if (!taken.acquired) {
    throw new CustomerBusyError(`another change to customer ${request.customerId} is running`, taken.retryAfterSeconds);
  }
  try {
    return await work();
  } finally {
    await lock.release(request.customerId, owner).catch((error: unknown) => {
      logger.warn('customer lock release failed; it expires with its lease', { customerId: request.customerId, error });
    });
  }
}
