import type { ApiKeySecret } from '../api-key-secret';
import type { Customer, Registration, RegistrationRequest, RegistrationState } from './registration';

export interface IssuedKey {
  id: string;
  secret: ApiKeySecret;
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

/** API Gateway, as the provisioning saga sees it. */
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
  | { kind: 'customer-revoked' };

export interface RecordKeyInput {
  registration: Registration;
  keyId: string;
  fingerprint: string;
  state: Extract<RegistrationState, 'ACTIVE' | 'EMAIL_PENDING'>;
  rotateAt: string;
  now: Date;
}

export interface RecordFailureInput {
  registration: Registration;
  reason: string;
  detail: string;
  orphanKeyId?: string | undefined;
  now: Date;
}

/** The registration table, as the provisioning saga sees it. */
export interface RegistrationStore {
  /** Creates the registration if its id is new and the customer is not registered by another. */
  claim(registration: Registration, now: Date): Promise<ClaimResult>;
  /**
   * Takes over a registration whose lease expired. Returns undefined when another attempt was
   * faster.
   */
  takeOver(
    registration: Registration,
    attempt: { attemptId: string; leaseExpiresAt: number },
    now: Date,
  ): Promise<Registration | undefined>;
  /**
   * Records the key on the registration, the customer and the key item in one transaction.
   * @throws CustomerAlreadyRegisteredError when another registration owns the customer
   * @throws RegistrationInProgressError when this attempt lost its lease
   */
  recordKey(input: RecordKeyInput): Promise<Registration>;
  recordFailure(input: RecordFailureInput): Promise<Registration>;
  /**
   * Marks a registration that nobody is working on (QUEUED, or PENDING with an expired lease)
   * FAILED, for a message the worker cannot process. Returns false when there is no such
   * registration.
   */
  failUnclaimed(registrationId: string, failure: { reason: string; detail: string }, now: Date): Promise<boolean>;
  /** Lets the next attempt start at once instead of waiting for the lease to expire. */
  releaseLease(registration: Registration, now: Date): Promise<void>;
  getRegistration(registrationId: string): Promise<Registration | undefined>;
  getCustomer(customerId: string): Promise<Customer | undefined>;
}

/** Unfinished registrations, for the sweep that resumes them when nobody else does. */
export interface StalledRegistrations {
  /** Registrations whose resume time has passed (the RESUME partition of the due index). */
  findStalled(now: Date, limit: number): Promise<Registration[]>;
  /** Takes the registration out of the sweep's partition, for an operator to look at. */
  stopResuming(registration: Registration, now: Date): Promise<void>;
}

/** What the SQS worker receives: the validated request and the registration it belongs to. */
export interface ProvisioningMessage {
  registrationId: string;
  request: RegistrationRequest;
}

export interface RegistrationQueue {
  send(message: ProvisioningMessage): Promise<void>;
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
