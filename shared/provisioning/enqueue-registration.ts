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
 * Accepts a registration for the SQS worker: records it QUEUED (which places it on a shard), then
 * enqueues it on that shard's queue. The record comes first so that a status URL works at once
 * and a duplicate never reaches the queue as new.
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
  // To the queue of the shard the claim placed the customer on (a replay's: the shard it was
  // placed on before), so each shard's queue feeds the worker batches of that shard alone.
  await deps.queue.send({ registrationId: command.registrationId, request: command.request }, claim.registration.shard);
  return { outcome: claim.kind === 'claimed' ? 'queued' : 'requeued', registration: claim.registration };
}
