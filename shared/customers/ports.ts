import type { CustomerKey } from '../provisioning/registration';

/** Keeps a tier change, a rotation and a revocation of one customer from interleaving. */
export interface CustomerLock {
  /** Returns how many seconds the current holder still has when the lock is taken. */
  acquire(customerId: string, holder: { owner: string; operation: string; leaseSeconds: number }, now: Date): Promise<
    { acquired: true } | { acquired: false; retryAfterSeconds: number }
  >;
  release(customerId: string, owner: string): Promise<void>;
}

/** What tier changes and revocations write besides the key items of the rotation port. */
export interface CustomerStore {
  /** Moves the key item to its new plan (after API Gateway did). */
  setPlan(key: CustomerKey, usagePlanId: string, tier: string, now: Date): Promise<void>;
  /** The key is in no plan or the wrong one and could not be put back: for the reconciler. */
  markNeedsRepair(key: CustomerKey, intendedUsagePlanId: string, now: Date): Promise<void>;
  /** The customer's new tier, appended to its history. */
  recordTierChange(
    customerId: string,
    change: { from: string; to: string; requestId: string },
    now: Date,
  ): Promise<void>;
  /** The key was disabled by a revocation; it is deleted after `deleteAt`. */
  markRevokedKey(key: CustomerKey, deleteAt: string, now: Date): Promise<void>;
  /** Customer REVOKED, and its registration too, so a replay cannot look like a working key. */
  markCustomerRevoked(customerId: string, registrationId: string, now: Date): Promise<void>;
}
