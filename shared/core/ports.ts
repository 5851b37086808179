import type { LifecycleEvent } from './events';
import type { ApiKeySecret } from '../api-key-secret';
import type { Lease } from './customer-record';
import type { CustomerKey, DueType } from './model';
import type { Customer, Registration, RegistrationState } from './registration';

/*
 * The ports every use case shares: API Gateway's keys, the mail, the registration table and the
 * key items. Ports only one use case needs stay with it (provisioning/ports.ts, reconcile/ports.ts).
 */

export interface IssuedKey {
  id: string;
  secret: ApiKeySecret;
  /**
   * An earlier attempt made it (found by its name): that attempt may have emailed it, so it must
   * never be deleted as if it were unknown to the customer.
   */
  found?: boolean | undefined;
}

export interface NewKeySpec {
  name: string;
  customerId: string;
  description: string;
  tags: Record<string, string>;
}

export interface PlanLimits {
  rateLimit?: number | undefined;
  burstLimit?: number | undefined;
  quotaLimit?: number | undefined;
  quotaPeriod?: string | undefined;
}

/** API Gateway's keys, as the use cases see them: each takes the methods it calls (`Pick`). */
export interface KeyGateway {
  /**
   * Creates the key unless one with exactly this name exists. Safe to repeat: a create whose
   * outcome is unknown (5xx, dropped connection) is followed by a lookup, never blindly redone.
   * @throws TransientAwsError when AWS keeps throttling or failing
   */
  ensureKey(spec: NewKeySpec, options: { lookupFirst: boolean }): Promise<IssuedKey>;
  getKeyValue(keyId: string): Promise<ApiKeySecret>;
  /**
   * Puts the key into the plan; "already there" is success.
   * @throws AssociationRejectedError when API Gateway refuses for a reason a retry won't fix
   * @throws TransientAwsError
   */
  addKeyToPlan(usagePlanId: string, keyId: string): Promise<void>;
  /** Deletes the key; an already deleted key is success. */
  deleteKey(keyId: string): Promise<void>;
  /** Takes the key out of the plan (DeleteUsagePlanKey); a key not in it is success. */
  removeKeyFromPlan(usagePlanId: string, keyId: string): Promise<void>;
  /** Turns the key off (UpdateApiKey enabled=false); a deleted key counts as disabled. */
  disableKey(keyId: string): Promise<void>;
  getPlanLimits(usagePlanId: string): Promise<PlanLimits>;
  /**
   * The key's daily `[used, remaining]` quota counts in the plan, one pair per day from
   * `startDate` (YYYY-MM-DD, UTC), all pages joined. A key with no usage in the range may be
   * missing from API Gateway's answer: then the list is empty (or shorter than the range).
   * @throws UsageUnavailableError when the endpoint does not serve GetUsage (a local emulator)
   * @throws TransientAwsError
   */
  getUsage(usagePlanId: string, keyId: string, startDate: string, endDate: string): Promise<[number, number][]>;
}

export type ClaimResult =
  | { kind: 'claimed'; registration: Registration }
  | { kind: 'exists'; registration: Registration }
  | { kind: 'customer-taken' }
  | { kind: 'customer-revoked' }
  /** Another operation holds the customer's lease. */
  | { kind: 'customer-busy'; holder: Lease }
  /** The placement's shard is at its high-water mark, or draining: nothing was written. */
  | { kind: 'shard-full' };

/** Where a claim places the customer's key: counted on the shard, below its mark. */
export interface Placement {
  shardId: string;
  highWaterKeys: number;
}

export interface RecordKeyInput {
  registration: Registration;
  keyId: string;
  fingerprint: string;
  state: Extract<RegistrationState, 'ACTIVE' | 'EMAIL_PENDING'>;
  rotateAt: string;
  now: Date;
  /** The facts of the record (DESIGN §9), written with it. */
  events?: readonly LifecycleEvent[] | undefined;
}

export interface RecordFailureInput {
  registration: Registration;
  reason: string;
  detail: string;
  orphanKeyId?: string | undefined;
  now: Date;
  events?: readonly LifecycleEvent[] | undefined;
}

/**
 * The registration table, as the provisioning saga sees it. The customer record (CustomerLedger)
 * is the saga's serialization point too: the claim reserves the customer for the registration and
 * takes its lease, every later write of the saga is conditioned on holding it, and the record step
 * releases it.
 */
export interface RegistrationStore {
  /**
   * Creates the registration if its id is new and, in the same transaction, reserves the customer
   * for it: status PENDING, `registrationId`, and (unless the registration is QUEUED) the
   * customer's lease, owner `registration.attemptId`, until `registration.leaseExpiresAt`, must
   * finish. A customer is free for a registration when it has no record, is UNREGISTERED, or is
   * REVOKED and the request is an explicit re-activation; and nobody holds its lease.
   * `customer-taken`: registered or reserved by another registration; `customer-revoked`: revoked
   * and no re-activation; `customer-busy`: another operation holds the lease.
   */
  claim(registration: Registration, now: Date, placement?: Placement): Promise<ClaimResult>;
  /**
   * Takes over a registration whose lease expired, with the customer's lease: from the
   * registration's previous attempt, or free, or expired and not must-finish. A QUEUED
   * registration becomes PENDING. Returns undefined when another attempt was faster.
   * @throws CustomerBusyError when another operation holds the customer's lease
   */
  takeOver(
    registration: Registration,
    attempt: { attemptId: string; leaseExpiresAt: number },
    now: Date,
  ): Promise<Registration | undefined>;
  /**
   * Records the key on the registration, writes its key item (ACTIVE, due for rotation at
   * `rotateAt`), and the customer: ACTIVE, email and tier of the registration, the key in its list,
   * `emailedKeyId` when the state is ACTIVE; releases the customer's lease. One transaction.
   * @throws RegistrationInProgressError when this attempt lost its lease
   */
  recordKey(input: RecordKeyInput): Promise<Registration>;
  /**
   * FAILED with the reason; the customer returns to its status before the claim (UNREGISTERED, or
   * REVOKED for a re-activation) and its lease is released; an orphan key item is recorded for the
   * reconciler. @throws RegistrationInProgressError when this attempt lost its lease
   */
  recordFailure(input: RecordFailureInput): Promise<Registration>;
  /**
   * Lets the next attempt start at once instead of waiting for the lease to expire: the
   * registration's lease and the customer's, if this attempt still holds them.
   */
  releaseLease(registration: Registration, now: Date): Promise<void>;
  getRegistration(registrationId: string): Promise<Registration | undefined>;
  getCustomer(customerId: string): Promise<Customer | undefined>;
}

export interface OutgoingEmail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  send(email: OutgoingEmail): Promise<void>;
}

/** The key items of the table, as rotation, retirement and the usage report see them. */
export interface KeyStore {
  /** Keys in one partition of the due index whose time has come, oldest first. */
  findDue(dueType: DueType, now: Date, limit: number): Promise<CustomerKey[]>;
  countDue(dueType: DueType, now: Date): Promise<number>;
  /** The customer's key items, read consistently. */
  keysOf(customerId: string): Promise<CustomerKey[]>;
  /**
   * Moves a key to its next due step if it is still where `from` says; false when it was not.
   * Only for steps that change nothing but the key's place in the due index (the reminder):
   * everything else is written with the customer's lease (CustomerLedger.commit).
   */
  advance(key: CustomerKey, from: DueType, to: { dueType: DueType; dueAt: string }, now: Date): Promise<boolean>;
}
