import type { CustomerKey } from '../provisioning/registration';
import type { DueType } from '../aws/table-keys';

export interface RotationAttempt {
  attemptId: string;
  leaseExpiresAt: number;
}

export interface ClaimedRotation {
  key: CustomerKey;
  /** An earlier attempt claimed this rotation: it may have created the successor already. */
  resumed: boolean;
}

export interface RecordRotationInput {
  oldKey: CustomerKey;
  attempt: RotationAttempt;
  successor: { keyId: string; fingerprint: string; generation: number; rotateAt: string };
  retireAt: string;
  /** Where the old key waits next: REMIND (a reminder is due first) or RETIRE, and when. */
  next: { dueType: DueType; dueAt: string };
  now: Date;
}

/** The key items of the table, as the rotation and retirement jobs see them. */
export interface KeyStore {
  /** Keys in one partition of the due index whose time has come, oldest first. */
  findDue(dueType: DueType, now: Date, limit: number): Promise<CustomerKey[]>;
  countDue(dueType: DueType, now: Date): Promise<number>;
  /** The customer's keys, read consistently. */
  keysOf(customerId: string): Promise<CustomerKey[]>;
  /**
   * Claims the rotation of an ACTIVE key for one attempt. Returns undefined when the key is no
   * longer ACTIVE or another attempt holds the claim: two overlapping runs rotate a key once.
   */
  claimRotation(key: CustomerKey, attempt: RotationAttempt, now: Date): Promise<ClaimedRotation | undefined>;
  /** Gives the claim up (lease 0) so that the next run can resume at once. */
  releaseRotation(key: CustomerKey, attempt: RotationAttempt): Promise<void>;
  /** Records the successor ACTIVE and the old key RETIRING, in one transaction. */
  recordRotation(input: RecordRotationInput): Promise<void>;
  /** Moves a key to its next due step if it is still where `from` says; false when it was not. */
  advance(
    key: CustomerKey,
    from: DueType,
    to: { state?: CustomerKey['state']; dueType?: DueType; dueAt?: string },
    now: Date,
  ): Promise<boolean>;
}
