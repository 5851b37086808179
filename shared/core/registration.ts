import { createHash } from 'node:crypto';
import type { CustomerKey } from './model';

/**
 * QUEUED: accepted for the SQS worker, no attempt yet. PENDING: an attempt owns it (or crashed
 * owning it). EMAIL_PENDING: the key works, the email is owed. ACTIVE and FAILED are final;
 * REVOKED: the customer was revoked after the registration completed.
 */
export type RegistrationState = 'QUEUED' | 'PENDING' | 'EMAIL_PENDING' | 'ACTIVE' | 'FAILED' | 'REVOKED';

/** What the portal asks for; validated before it gets here. */
export interface RegistrationRequest {
  customerId: string;
  email: string;
  tier: string;
  name?: string | undefined;
  /** An explicit re-activation of a revoked customer, under a new registration id. */
  reactivate?: boolean | undefined;
}

export interface Registration extends RegistrationRequest {
  /** The idempotency key; also the id of the registration resource. */
  registrationId: string;
  payloadHash: string;
  /** The shard the claim placed the customer on; none: the home shard. */
  shard?: string | undefined;
  /** The claim counted the registration's key on its shard (a failure takes it off again). */
  shardCounted?: boolean | undefined;
  /** The tier's usage plan in that shard. */
  usagePlanId: string;
  state: RegistrationState;
  keyId?: string | undefined;
  keyFingerprint?: string | undefined;
  /** Short, safe reason code of a FAILED registration. */
  failureReason?: string | undefined;
  /** A key that could not be rolled back; left for the reconciler. */
  orphanKeyId?: string | undefined;
  /** How often an attempt took the registration over from an earlier one (sweep backoff). */
  resumeAttempts?: number | undefined;
  /** The customer's event count when this attempt took it (not stored: known or read when writing). */
  eventSeq?: number | undefined;
  /** Epoch ms until which the attempt `attemptId` owns the registration. */
  leaseExpiresAt: number;
  attemptId: string;
  createdAt: string;
  updatedAt: string;
}

export interface Customer {
  customerId: string;
  email: string;
  tier: string;
  status: string;
  registrationId: string;
  /** Where the customer's keys are made (core/shards.ts); none: the home shard. */
  shard?: string | undefined;
  /** Lifecycle events written for the customer so far. */
  eventSeq?: number | undefined;
  createdAt: string;
  updatedAt: string;
  keys: CustomerKey[];
}

/** Hash of the request as the portal meant it, independent of key order and whitespace. */
export function hashRegistrationRequest(request: RegistrationRequest): string {
  const canonical = JSON.stringify([request.customerId, request.email, request.tier, request.name ?? null]);
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * The API key's name is derived from the registration alone, so an attempt that resumes after a
 * crash finds the key an earlier attempt created (GetApiKeys nameQuery) instead of making another.
 * Hashing keeps customer input out of the name and the name's length fixed.
 */
export function keyNameFor(prefix: string, registrationId: string): string {
  return `${prefix}-${createHash('sha256').update(registrationId).digest('hex').slice(0, 32)}`;
}
