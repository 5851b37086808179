import { registrationIdSchema } from '../core/schemas';
import { isPermanent, type KeyplanError, ValidationError } from '../errors';
import { logger } from '../logger';
import { validate } from '../validation';
import type { UnclaimedRegistrations } from './ports';
import { type ProvisioningDeps, provisionKey } from './provision-key';
import { provisioningMessageSchema } from './request-schema';

/**
 * `provisioned`: this message did the work. `replayed`: it had been done. `rejected`: the message
 * can never succeed (malformed, unknown tier, refused by API Gateway and rolled back, customer or
 * idempotency conflict); the outcome is recorded on the registration where there is one.
 */
export type MessageOutcome = 'provisioned' | 'replayed' | 'rejected';

/** The saga's deps, with a store that can also fail a registration nobody holds. */
export type WorkerDeps = ProvisioningDeps & { store: ProvisioningDeps['store'] & UnclaimedRegistrations };

/**
 * Runs the provisioning saga for one queue message.
 *
 * Non-retryable outcomes are recorded and returned, so the message is acknowledged instead of
 * cycling to the DLQ; retryable ones (throttling, 5xx, a lease held by another attempt) throw, so
 * the message goes back to the queue and a later delivery resumes the saga.
 *
 * @throws TransientAwsError, RegistrationInProgressError, or anything unexpected: retry
 */
export async function provisionFromMessage(body: string, now: Date, deps: WorkerDeps): Promise<MessageOutcome> {
  let message;
  try {
    message = validate(provisioningMessageSchema, parseJson(body));
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    const registrationId = registrationIdOf(body);
    const recorded = registrationId
      ? await deps.store.failUnclaimed(registrationId, { reason: 'invalid-message', detail: error.message }, now)
      : false;
    logger.warn('invalid provisioning message rejected', { registrationId, field: error.field, recorded });
    return 'rejected';
  }

  const log = { registrationId: message.registrationId, customerId: message.request.customerId };
  try {
    const result = await provisionKey({ ...message, now }, deps);
    return result.outcome === 'created' ? 'provisioned' : 'replayed';
  } catch (error) {
    if (error instanceof ValidationError) {
      // The only validation left to the saga is the tier: it was removed from the tier map after
      // the message was queued.
      const recorded = await deps.store.failUnclaimed(
        message.registrationId,
        { reason: 'unknown-tier', detail: error.message },
        now,
      );
      logger.warn('provisioning message for an unknown tier rejected', { ...log, recorded });
      return 'rejected';
    }
    if (isPermanent(error)) {
      logger.warn('provisioning message rejected', { ...log, problem: (error as KeyplanError).code });
      return 'rejected';
    }
    throw error;
  }
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new ValidationError('body', 'the message is not valid JSON');
  }
}

/** The registration a malformed message was meant for, when that much can be read from it. */
function registrationIdOf(body: string): string | undefined {
  try {
    return registrationIdSchema((JSON.parse(body) as { registrationId?: unknown }).registrationId, 'registrationId');
  } catch {
    return undefined;
  }
}
