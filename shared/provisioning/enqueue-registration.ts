import { randomUUID } from 'node:crypto';
import { claimRegistration, isFinished, type ProvisioningSettings } from './provision-key';
import type { RegistrationStore } from '../core/ports';
import type { Registration, RegistrationRequest } from '../core/registration';
import type { RegistrationQueue } from './ports';

export interface EnqueueDeps {
  store: RegistrationStore;
  queue: RegistrationQueue;
  clock: () => Date;
  settings: ProvisioningSettings;
}

export interface EnqueueResult {
  /**
   * `queued`: new, and on the queue. `requeued`: known but unfinished (a send may have been lost),
   * so it was sent again; the saga makes the repeat harmless. `replayed`: finished before.
   */
  outcome: 'queued' | 'requeued' | 'replayed';
  registration: Registration;
}

/**
 * Accepts a registration for the SQS worker: records it QUEUED, then enqueues it. The record
 * comes first so that a status URL works at once and a duplicate never reaches the queue as new.
 *
 * @throws ValidationError, CustomerAlreadyRegisteredError, IdempotencyKeyReusedError,
 *   ProvisioningFailedError (it had failed before)
 * @throws TransientAwsError when the table or the queue is unavailable; retrying resends
 */
export async function enqueueRegistration(
  command: { registrationId: string; request: RegistrationRequest; now: Date },
  deps: EnqueueDeps,
): Promise<EnqueueResult> {
  const claim = await claimRegistration(
    // No lease: the first worker attempt takes a QUEUED registration over at once.
    { ...command, state: 'QUEUED', attemptId: `queued-${randomUUID()}`, leaseExpiresAt: 0 },
    deps,
  );
  if (claim.kind === 'exists' && isFinished(claim.registration)) {
    return { outcome: 'replayed', registration: claim.registration };
  }
  await deps.queue.send({ registrationId: command.registrationId, request: command.request });
  return { outcome: claim.kind === 'claimed' ? 'queued' : 'requeued', registration: claim.registration };
}
