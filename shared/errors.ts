/**
 * Domain errors. Adapters translate the AWS errors they understand into these; the HTTP layer maps
 * them to problem+json in one place (shared/http/problem.ts). Anything else is an internal error
 * whose details never leave the process.
 */
export abstract class KeyplanError extends Error {
  /** Stable, machine-readable problem code; also the last segment of the problem `type`. */
  abstract readonly code: string;
  /**
   * Whether the same request may succeed later (AWS throttled, another operation held the
   * customer, work was handed to the sweep): queues return the message, jobs leave the work due,
   * callers get Retry-After. False, unless an error says otherwise: it never will as it is (bad
   * input, a conflict, a final state).
   */
  readonly retryable: boolean = false;
}

/** The request is malformed; `field` names the offending input (JSON pointer-ish dotted path). */
export class ValidationError extends KeyplanError {
  override readonly name = 'ValidationError';
  readonly code = 'validation-failed';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends KeyplanError {
  override readonly name = 'NotFoundError';
  readonly code = 'not-found';
}

/** The same idempotency key arrived with a different payload. */
export class IdempotencyKeyReusedError extends KeyplanError {
  override readonly name = 'IdempotencyKeyReusedError';
  readonly code = 'idempotency-key-reused';
}

/** Another attempt holds the registration's lease; the caller should retry after it expires. */
export class RegistrationInProgressError extends KeyplanError {
  override readonly name = 'RegistrationInProgressError';
  readonly code = 'registration-in-progress';
  override readonly retryable = true;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The customer already has a key from a different registration. */
export class CustomerAlreadyRegisteredError extends KeyplanError {
  override readonly name = 'CustomerAlreadyRegisteredError';
  readonly code = 'customer-already-registered';
}

/**
 * AWS kept answering with throttling or server errors after the SDK's retries. Progress is
 * recorded, so a later attempt resumes where this one stopped.
 */
export class TransientAwsError extends KeyplanError {
  override readonly name = 'TransientAwsError';
  readonly code = 'service-unavailable';
  override readonly retryable = true;
  /**
   * AWS certainly did not carry the call out (it was throttled): nothing changed. A 5xx or a
   * dropped connection leaves that open.
   */
  readonly notApplied: boolean;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    options?: ErrorOptions & { notApplied?: boolean },
  ) {
    super(message, options);
    this.notApplied = options?.notApplied ?? false;
  }
}

/** API Gateway refused to put the key into the usage plan for a reason a retry will not fix. */
export class AssociationRejectedError extends KeyplanError {
  override readonly name = 'AssociationRejectedError';
  readonly code = 'association-rejected';
}

/** The registration ended FAILED; `reason` is recorded on it and safe to show. */
export class ProvisioningFailedError extends KeyplanError {
  override readonly name = 'ProvisioningFailedError';
  readonly code = 'provisioning-failed';
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`provisioning failed: ${reason}`, options);
  }
}

/** A rotation could not finish; the old key stays ACTIVE and the next run retries it. */
export class RotationIncompleteError extends KeyplanError {
  override readonly name = 'RotationIncompleteError';
  readonly code = 'rotation-incomplete';
  override readonly retryable = true;
}

/** The customer was revoked; registering again needs an explicit re-activation. */
export class CustomerRevokedError extends KeyplanError {
  override readonly name = 'CustomerRevokedError';
  readonly code = 'customer-revoked';
}

/** Another tier change, rotation or revocation of the customer is running. */
export class CustomerBusyError extends KeyplanError {
  override readonly name: string = 'CustomerBusyError';
  readonly code = 'customer-busy';
  override readonly retryable = true;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A tier change failed; the keys were put back into their old plan (or recorded for repair). */
export class TierChangeFailedError extends KeyplanError {
  override readonly name = 'TierChangeFailedError';
  readonly code = 'tier-change-failed';
  override readonly retryable = true;
  constructor(
    readonly repairNeeded: boolean,
    options?: ErrorOptions,
  ) {
    super(repairNeeded ? 'tier change failed; the sweep puts the keys back into their plan' : 'tier change failed; keys restored', options);
  }
}

/**
 * The AWS endpoint does not serve API Gateway usage data (GetUsage): a local emulator (moto has
 * no `/usageplans/{id}/usage` route) or a proxy in front of one. Nothing a retry would fix.
 */
export class UsageUnavailableError extends KeyplanError {
  override readonly name = 'UsageUnavailableError';
  readonly code = 'usage-unavailable';
}

/** The request body is larger than the HTTP functions accept; refused before it is parsed. */
export class PayloadTooLargeError extends KeyplanError {
  override readonly name = 'PayloadTooLargeError';
  readonly code = 'payload-too-large';
  constructor(readonly limitBytes: number) {
    super(`the body is larger than ${limitBytes} bytes`);
  }
}

/**
 * No shard may take a new customer: every shard is at its high-water mark or draining. Retryable:
 * queued registrations wait (and alarm) until an operator adds a shard (docs/capacity.md).
 */
export class NoShardCapacityError extends KeyplanError {
  override readonly name = 'NoShardCapacityError';
  readonly code = 'no-shard-capacity';
  override readonly retryable = true;
}

/**
 * keyplan cannot act in the shard: its role could not be assumed (trust policy, external id, STS
 * down). Only that shard's work fails; retryable, as the fix is on the operator's side.
 */
export class ShardUnavailableError extends KeyplanError {
  override readonly name = 'ShardUnavailableError';
  readonly code = 'shard-unavailable';
  override readonly retryable = true;
  constructor(
    readonly shardId: string,
    options?: ErrorOptions,
  ) {
    super(`shard "${shardId}" is unavailable: its role could not be assumed`, options);
  }
}

/** A record names a shard the shard list does not have: the list lost a shard that holds keys. */
export class UnknownShardError extends KeyplanError {
  override readonly name = 'UnknownShardError';
  readonly code = 'unknown-shard';
  constructor(readonly shardId: string) {
    super(`shard "${shardId}" is not in the shard list`);
  }
}

/**
 * The operation's lease on the customer expired and another operation took the customer over:
 * nothing more may be done (no key created, no email sent). Whatever it left is finished by the
 * holder that took over, or by the sweep. A busy customer to its caller: retry later.
 */
export class LeaseLostError extends CustomerBusyError {
  override readonly name = 'LeaseLostError';
}

/**
 * Never worth retrying as it is: the one answer to "is this failure permanent?" for the queue
 * worker, the resume sweep, the import and the billing events. Anything unknown is not permanent:
 * retried, and in the end left to the dead-letter queue or an operator.
 */
export function isPermanent(error: unknown): boolean {
  return error instanceof KeyplanError && !error.retryable;
}
