import { randomUUID } from 'node:crypto';
import type { ApiKeySecret } from '../api-key-secret';
import {
  AssociationRejectedError,
  CustomerAlreadyRegisteredError,
  CustomerRevokedError,
  IdempotencyKeyReusedError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  TransientAwsError,
  ValidationError,
} from '../errors';
import { usagePlanOf } from '../config';
import { logger } from '../logger';
import { countMetric, METRIC } from '../metrics';
import { buildKeyEmail } from './key-email';
import type { IssuedKey, KeyGateway, Mailer, RegistrationStore } from './ports';
import {
  hashRegistrationRequest,
  keyNameFor,
  type Registration,
  type RegistrationRequest,
} from './registration';

export interface ProvisioningSettings {
  tierMap: Readonly<Record<string, string>>;
  keyNamePrefix: string;
  rotationDays: number;
  leaseSeconds: number;
}

export interface ProvisioningDeps {
  store: RegistrationStore;
  keys: KeyGateway;
  mailer: Mailer;
  settings: ProvisioningSettings;
}

export interface ProvisionResult {
  /** `created`: this call did the work; `replayed`: it was done before. */
  outcome: 'created' | 'replayed';
  registration: Registration;
}

const DAY_MS = 86_400_000;

/**
 * Turns a registration request into an enabled API key in its tier's usage plan, emailed to the
 * customer. A resumable saga: every step is idempotent and a retry after a crash at any point
 * continues instead of starting over.
 *
 * 1. Claim the registration (conditional write, lease) — replays end here with one read.
 * 2. Create the key under a name derived from the registration (found again on resume).
 * 3. Put the key, by id, into the tier's usage plan; a refusal rolls the key back.
 * 4. Email the key value; a failure leaves the key and the registration EMAIL_PENDING.
 * 5. Record the key (fingerprint only) and complete the registration.
 *
 * @throws ValidationError for an unknown tier
 * @throws IdempotencyKeyReusedError when the id was used with another payload
 * @throws RegistrationInProgressError while another attempt holds the lease
 * @throws CustomerAlreadyRegisteredError when another registration owns the customer
 * @throws TransientAwsError when AWS keeps throttling or failing; the next attempt resumes
 * @throws ProvisioningFailedError when the registration ended (or had ended) FAILED
 */
export async function provisionKey(
  command: { registrationId: string; request: RegistrationRequest; now: Date },
  deps: ProvisioningDeps,
): Promise<ProvisionResult> {
  const { registrationId, now } = command;
  const { store, settings } = deps;
  const attempt = { attemptId: randomUUID(), leaseExpiresAt: now.getTime() + settings.leaseSeconds * 1000 };
  const claim = await claimRegistration({ ...command, state: 'PENDING', ...attempt }, deps);
  let registration = claim.registration;
  // Only an attempt that follows another may find a key left behind; a fresh claim, or the first
  // attempt on a QUEUED registration, saves the lookup (a management call on a shared budget).
  let mayHaveKey = false;
  if (claim.kind === 'exists') {
    if (isFinished(claim.registration)) return { outcome: 'replayed', registration: claim.registration };
    mayHaveKey = claim.registration.state !== 'QUEUED';
    registration = await takeOver(claim.registration, attempt, now, store);
  }

  try {
    return { outcome: 'created', registration: await runSteps(registration, { mayHaveKey, now }, deps) };
  } catch (error) {
    if (error instanceof TransientAwsError) {
      // Progress lives in AWS and the table; let the caller's retry start at once.
      await store.releaseLease(registration, now).catch((releaseError: unknown) => {
        logger.warn('lease release failed', { registrationId, error: releaseError });
      });
    }
    throw error;
  }
}

/**
 * Claims the registration, or finds the existing one with the same payload.
 * @throws ValidationError, CustomerAlreadyRegisteredError, IdempotencyKeyReusedError,
 *   ProvisioningFailedError (a FAILED registration replayed)
 */
export async function claimRegistration(
  command: {
    registrationId: string;
    request: RegistrationRequest;
    now: Date;
    state: 'PENDING' | 'QUEUED';
    attemptId: string;
    leaseExpiresAt: number;
  },
  deps: { store: RegistrationStore; settings: ProvisioningSettings },
): Promise<{ kind: 'claimed' | 'exists'; registration: Registration }> {
  const { registrationId, request, now } = command;
  const usagePlanId = usagePlanOf(deps.settings.tierMap, request.tier);
  if (!usagePlanId) throw new ValidationError('tier', `unknown tier "${request.tier}"`);
  const fresh: Registration = {
    ...request,
    registrationId,
    payloadHash: hashRegistrationRequest(request),
    usagePlanId,
    state: command.state,
    attemptId: command.attemptId,
    leaseExpiresAt: command.leaseExpiresAt,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  const claim = await deps.store.claim(fresh, now);
  if (claim.kind === 'customer-taken') {
    throw new CustomerAlreadyRegisteredError(`customer ${request.customerId} is registered under another id`);
  }
  if (claim.kind === 'customer-revoked') {
    throw new CustomerRevokedError(
      `customer ${request.customerId} was revoked; register again with "reactivate": true and a new Idempotency-Key`,
    );
  }
  if (claim.kind === 'claimed') return claim;
  const existing = claim.registration;
  if (existing.payloadHash !== fresh.payloadHash) {
    throw new IdempotencyKeyReusedError(`registration ${registrationId} was made with another payload`);
  }
  if (existing.state === 'FAILED') throw new ProvisioningFailedError(existing.failureReason ?? 'unknown');
  if (existing.state === 'REVOKED') {
    throw new CustomerRevokedError(
      `customer ${request.customerId} was revoked; register again with "reactivate": true and a new Idempotency-Key`,
    );
  }
  return claim;
}

export const isFinished = (registration: Registration) => registration.state === 'ACTIVE';

async function takeOver(
  existing: Registration,
  attempt: { attemptId: string; leaseExpiresAt: number },
  now: Date,
  store: RegistrationStore,
): Promise<Registration> {
  if (existing.leaseExpiresAt > now.getTime()) {
    throw new RegistrationInProgressError(
      `registration ${existing.registrationId} is being provisioned`,
      Math.max(1, Math.ceil((existing.leaseExpiresAt - now.getTime()) / 1000)),
    );
  }
  const taken = await store.takeOver(existing, attempt, now);
  if (!taken) {
    throw new RegistrationInProgressError(`registration ${existing.registrationId} is being provisioned`, 1);
  }
  logger.info('resuming registration', { registrationId: existing.registrationId, state: existing.state });
  return taken;
}

async function runSteps(
  registration: Registration,
  context: { mayHaveKey: boolean; now: Date },
  deps: ProvisioningDeps,
): Promise<Registration> {
  const { store, keys, settings } = deps;
  const { now } = context;
  const log = { registrationId: registration.registrationId, customerId: registration.customerId };

  let key: IssuedKey;
  if (registration.state === 'EMAIL_PENDING' && registration.keyId) {
    // Association and record were done; only the email is owed.
    key = { id: registration.keyId, secret: await keys.getKeyValue(registration.keyId) };
  } else {
    key = await keys.ensureKey(
      {
        name: keyNameFor(settings.keyNamePrefix, registration.registrationId),
        customerId: registration.customerId,
        description: `keyplan key of customer ${registration.customerId}`,
        tags: {
          'keyplan:managed': 'true',
          'keyplan:customer': registration.customerId,
          'keyplan:registration': registration.registrationId,
        },
      },
      { lookupFirst: context.mayHaveKey },
    );
    logger.info('api key ready', { ...log, keyId: key.id });
    await associateOrRollBack(registration, key.id, now, deps);
  }

  const rotateAt = new Date(now.getTime() + settings.rotationDays * DAY_MS).toISOString();
  const record = (state: 'ACTIVE' | 'EMAIL_PENDING') =>
    store.recordKey({ registration, keyId: key.id, fingerprint: key.secret.fingerprint(), state, rotateAt, now });

  // A resumed EMAIL_PENDING registration was counted when its key was first recorded.
  const newKey = registration.state !== 'EMAIL_PENDING';
  try {
    await sendKeyEmail(registration, key.secret, deps);
  } catch (error) {
    logger.error('key email failed; registration left EMAIL_PENDING', { ...log, keyId: key.id, error });
    countMetric(METRIC.emailsFailed);
    const pending = await recordOrRollBack(registration, key.id, now, deps, () => record('EMAIL_PENDING'));
    if (newKey) countMetric(METRIC.keysProvisioned);
    return pending;
  }
  const completed = await recordOrRollBack(registration, key.id, now, deps, () => record('ACTIVE'));
  logger.info('registration complete', { ...log, keyId: key.id, state: completed.state });
  if (newKey) countMetric(METRIC.keysProvisioned);
  return completed;
}

async function sendKeyEmail(registration: Registration, secret: ApiKeySecret, deps: ProvisioningDeps) {
  const limits = await deps.keys.getPlanLimits(registration.usagePlanId);
  await deps.mailer.send(
    buildKeyEmail({ to: registration.email, name: registration.name, tier: registration.tier, secret, limits }),
  );
}

async function associateOrRollBack(registration: Registration, keyId: string, now: Date, deps: ProvisioningDeps) {
  try {
    await deps.keys.addKeyToPlan(registration.usagePlanId, keyId);
  } catch (error) {
    if (!(error instanceof AssociationRejectedError)) throw error;
    await rollBack(registration, keyId, now, deps, { reason: 'association-rejected', error });
  }
}

/**
 * The customer check at claim time cannot see a registration under another id that started at the
 * same moment; the record step can, and the loser gives its key back.
 */
async function recordOrRollBack(
  registration: Registration,
  keyId: string,
  now: Date,
  deps: ProvisioningDeps,
  record: () => Promise<Registration>,
): Promise<Registration> {
  try {
    return await record();
  } catch (error) {
    if (!(error instanceof CustomerAlreadyRegisteredError)) throw error;
    return await rollBack(registration, keyId, now, deps, { reason: 'customer-already-registered', error });
  }
}

async function rollBack(
  registration: Registration,
  keyId: string,
  now: Date,
  deps: ProvisioningDeps,
  failure: { reason: string; error: Error },
): Promise<never> {
  const log = { registrationId: registration.registrationId, customerId: registration.customerId, keyId };
  let orphanKeyId: string | undefined;
  try {
    await deps.keys.deleteKey(keyId);
    logger.warn('api key rolled back', { ...log, reason: failure.reason });
    countMetric(METRIC.rollbacks);
  } catch (deleteError) {
    orphanKeyId = keyId;
    logger.error('rollback failed; key recorded as orphan', { ...log, reason: failure.reason, error: deleteError });
    countMetric(METRIC.orphansRecorded);
  }
  await deps.store.recordFailure({
    registration,
    reason: failure.reason,
    detail: failure.error.message,
    orphanKeyId,
    now,
  });
  if (failure.error instanceof CustomerAlreadyRegisteredError) throw failure.error;
  throw new ProvisioningFailedError(failure.reason, { cause: failure.error });
}
