import type { Registration, RegistrationRequest } from '../core/registration';

/** Unfinished registrations, for the sweep that resumes them when nobody else does. */
export interface StalledRegistrations {
  /** Registrations whose resume time has passed (the RESUME partition of the due index). */
  findStalled(now: Date, limit: number): Promise<Registration[]>;
  /** Takes the registration out of the sweep's partition, for an operator to look at. */
  stopResuming(registration: Registration, now: Date): Promise<void>;
}

/** The worker's way out for a message it cannot process (provision-from-message.ts). */
export interface UnclaimedRegistrations {
  /**
   * Marks a registration that nobody is working on (QUEUED, or PENDING with an expired lease)
   * FAILED, and returns its reserved customer to its status before the claim. Returns false when
   * there is no such registration.
   */
  failUnclaimed(registrationId: string, failure: { reason: string; detail: string }, now: Date): Promise<boolean>;
}

/** What the SQS worker receives: the validated request and the registration it belongs to. */
export interface ProvisioningMessage {
  registrationId: string;
  request: RegistrationRequest;
}

/**
 * The provisioning queues: one per shard (or one for all), so that a worker batch holds one
 * shard's registrations and is paced by that shard's budget alone.
 */
export interface RegistrationQueue {
  /** Sends the message to the queue of `shard`, the shard the registration's claim placed it on. */
  send(message: ProvisioningMessage, shard: string | undefined): Promise<void>;
}
