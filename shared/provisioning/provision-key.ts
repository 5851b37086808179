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
  type CustomerKey,
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

  if (registration.state === 'EMAIL_PENDING' && registration.keyId) {
    // Association and record were done; only the email is owed.
    return finishOwedEmail(registration, registration.keyId, now, deps);
  }

  const key: IssuedKey = await keys.ensureKey(
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

  const rotateAt = new Date(now.getTime() + settings.rotationDays * DAY_MS).toISOString();
  const record = (state: 'ACTIVE' | 'EMAIL_PENDING') =>
    store.recordKey({ registration, keyId: key.id, fingerprint: key.secret.fingerprint(), state, rotateAt, now });

  try {
    await sendKeyEmail(registration, key.secret, deps);
  } catch (error) {
    logger.error('key email failed; registration left EMAIL_PENDING', { ...log, keyId: key.id, error });
    countMetric(METRIC.emailsFailed);
    const pending = await recordOrRollBack(registration, key.id, now, deps, () => record('EMAIL_PENDING'));
    countMetric(METRIC.keysProvisioned);
    return pending;
  }
  const completed = await recordOrRollBack(registration, key.id, now, deps, () => record('ACTIVE'));
  logger.info('registration complete', { ...log, keyId: key.id, state: completed.state });
  countMetric(METRIC.keysProvisioned);
  return completed;
}

/**
 * Sends the email an EMAIL_PENDING registration owes and completes it. Its key was made, put into
 * its plan and recorded long ago, perhaps: since then a tier change may have moved the key to
 * another plan, or a rotation replaced it (and emailed the successor). So the email quotes the
 * customer's tier of now, a key no longer ACTIVE is not sent at all (the customer must not be
 * handed a key on its way out), and the record keeps the key's plan and the customer's tier as
 * they are now: recording the registration's own would undo the tier change.
 */
async function finishOwedEmail(
  registration: Registration,
  keyId: string,
  now: Date,
  deps: ProvisioningDeps,
): Promise<Registration> {
  const log = { registrationId: registration.registrationId, customerId: registration.customerId, keyId };
  const asItIsNow = async (): Promise<{ current: Registration; key: CustomerKey | undefined }> => {
    const customer = await deps.store.getCustomer(registration.customerId);
    const key = customer?.keys.find((candidate) => candidate.keyId === keyId);
    const tier = customer?.tier ?? registration.tier;
    return { key, current: { ...registration, tier, usagePlanId: key?.usagePlanId ?? registration.usagePlanId } };
  };

  const before = await asItIsNow();
  let fingerprint = before.key?.fingerprint ?? registration.keyFingerprint;
  let emailed = true;
  if (before.key && before.key.state !== 'ACTIVE') {
    logger.warn('owed key email not sent: the key was replaced since', { ...log, keyState: before.key.state });
  } else {
    const secret = await deps.keys.getKeyValue(keyId);
    fingerprint = secret.fingerprint();
    try {
      await sendKeyEmail(before.current, secret, deps);
    } catch (error) {
      logger.error('key email failed; registration left EMAIL_PENDING', { ...log, error });
      countMetric(METRIC.emailsFailed);
      emailed = false;
    }
  }
  // Read again: a tier change may have finished while the email was on its way.
  const { current } = await asItIsNow();
  const recordedFingerprint = fingerprint ?? (await deps.keys.getKeyValue(keyId)).fingerprint();
  const rotateAt = new Date(now.getTime() + deps.settings.rotationDays * DAY_MS).toISOString();
  const recorded = await recordOrRollBack(current, keyId, now, deps, () =>
    deps.store.recordKey({
      registration: current,
      keyId,
      fingerprint: recordedFingerprint,
      state: emailed ? 'ACTIVE' : 'EMAIL_PENDING',
      rotateAt,
      now,
    }),
  );
  if (emailed) logger.info('registration complete', { ...log, state: recorded.state });
  // The registration itself keeps the tier and plan it asked for; only the records follow the customer.
  return { ...recorded, tier: registration.tier, usagePlanId: registration.usagePlanId };
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
