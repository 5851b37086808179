import { event } from '../core/events';
import { randomUUID } from 'node:crypto';
import type { ApiKeySecret } from '../api-key-secret';
import { busyError } from '../core/customer-lease';
import type { CustomerLedger } from '../core/customer-record';
import { buildKeyEmail } from '../core/key-email';
import { DAY_MS } from '../core/model';
import type { ClaimResult, IssuedKey, KeyGateway, Mailer, RegistrationStore } from '../core/ports';
import { placementOrder, planIn, type Shard, type ShardKeys, shardOf } from '../core/shards';
import { hashRegistrationRequest, keyNameFor, type Registration, type RegistrationRequest } from '../core/registration';
import {
  AssociationRejectedError,
  CustomerAlreadyRegisteredError,
  CustomerBusyError,
  CustomerRevokedError,
  IdempotencyKeyReusedError,
  NoShardCapacityError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  TransientAwsError,
  ValidationError,
} from '../errors';
import { logger } from '../logger';
import { countMetric, countShardMetric } from '../metrics';

export interface ProvisioningSettings {
  /** Where keys are made; the first is the home shard (core/shards.ts). */
  shards: readonly Shard[];
  keyNamePrefix: string;
  /** Every key keyplan makes is tagged with its stage; the reconciler touches only its own. */
  stage: string;
  rotationDays: number;
  leaseSeconds: number;
  /** How often the sweep finishes interrupted operations: a blocked customer's wait, at worst. */
  sweepSeconds: number;
}

export interface ProvisioningDeps {
  store: RegistrationStore;
  keys: ShardKeys<Pick<KeyGateway, 'ensureKey' | 'getKeyValue' | 'addKeyToPlan' | 'deleteKey' | 'getPlanLimits'>>;
  mailer: Mailer;
  /**
   * The customer record the claim reserved; the owed email completes through it. Commit only: the
   * registration's claim is its lease.
   */
  ledger: Pick<CustomerLedger, 'commit'>;
  /** Leases are times of this clock, never of a request's or an event's `now`. */
  clock: () => Date;
  settings: ProvisioningSettings;
}

export interface ProvisionResult {
  /** `created`: this call did the work; `replayed`: it was done before. */
  outcome: 'created' | 'replayed';
  registration: Registration;
}

/**
 * Turns a registration request into an enabled API key in its tier's usage plan, emailed to the
 * customer. A resumable saga: every step is idempotent and a retry after a crash at any point
 * continues instead of starting over.
 *
 * 1. Claim the registration and reserve the customer for it (one transaction; the customer's lease
 *    is the registration's until it records) — replays end here with one read. A second
 *    registration for the same customer is refused here, before it makes or emails anything.
 * 2. Create the key under a name derived from the registration (found again on resume).
 * 3. Put the key, by id, into the tier's usage plan; a refusal rolls the key back.
 * 4. Email the key value; a failure leaves the key and the registration EMAIL_PENDING.
 * 5. Record the key (fingerprint only) and complete the registration.
 *
 * @throws ValidationError for an unknown tier
 * @throws IdempotencyKeyReusedError when the id was used with another payload
 * @throws RegistrationInProgressError while another attempt holds the lease, or this one's ran out
 * @throws CustomerAlreadyRegisteredError when another registration owns the customer
 * @throws CustomerBusyError while another operation (a revocation, a rotation) holds the customer
 * @throws TransientAwsError when AWS keeps throttling or failing; the next attempt resumes
 * @throws ProvisioningFailedError when the registration ended (or had ended) FAILED
 */
export async function provisionKey(
  command: { registrationId: string; request: RegistrationRequest; now: Date },
  deps: ProvisioningDeps,
): Promise<ProvisionResult> {
  const { registrationId, now } = command;
  const { store, settings } = deps;
  const attempt = { attemptId: randomUUID(), leaseExpiresAt: deps.clock().getTime() + settings.leaseSeconds * 1000 };
  const claim = await claimRegistration({ ...command, state: 'PENDING', ...attempt }, deps);
  let registration = claim.registration;
  // Only an attempt that follows another may find a key left behind; a fresh claim, or the first
  // attempt on a QUEUED registration, saves the lookup (a management call on a shared budget).
  let mayHaveKey = false;
  if (claim.kind === 'exists') {
    if (isFinished(claim.registration)) return { outcome: 'replayed', registration: claim.registration };
    mayHaveKey = claim.registration.state !== 'QUEUED';
    registration = await takeOver(claim.registration, attempt, deps.clock(), store);
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
  deps: { store: RegistrationStore; clock: () => Date; settings: ProvisioningSettings },
): Promise<{ kind: 'claimed' | 'exists'; registration: Registration }> {
  const { registrationId, request, now } = command;
  const payloadHash = hashRegistrationRequest(request);
  // A shard at its mark (or draining) refuses in the claim itself, which then tries the next.
  let claim: ClaimResult = { kind: 'shard-full' };
  let fresh: Registration | undefined;
  // With no shard open, the home shard's claim still answers a replay; anyone else finds it full.
  const order = placementOrder(deps.settings.shards, request.customerId);
  const closed = order.length === 0;
  for (const shard of closed ? [shardOf(deps.settings.shards, undefined)] : order) {
    const usagePlanId = planIn(shard, request.tier);
    if (!usagePlanId) throw new ValidationError('tier', `unknown tier "${request.tier}"`);
    fresh = {
      ...request,
      registrationId,
      payloadHash,
      shard: shard.id,
      usagePlanId,
      state: command.state,
      attemptId: command.attemptId,
      leaseExpiresAt: command.leaseExpiresAt,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    const placement =
      closed || shard.highWaterKeys !== undefined
        ? { shardId: shard.id, highWaterKeys: closed ? 0 : (shard.highWaterKeys ?? 0) }
        : undefined;
    claim = await deps.store.claim(fresh, deps.clock(), placement);
    if (claim.kind !== 'shard-full') break;
    logger.info('shard full; placing on the next', { registrationId, shard: shard.id });
  }
  if (claim.kind === 'shard-full' || !fresh) {
    throw new NoShardCapacityError(`no shard has room for customer ${request.customerId}`);
  }
  if (claim.kind === 'customer-busy') {
    throw busyError(request.customerId, claim.holder, deps.clock(), deps.settings.sweepSeconds);
  }
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
  if (existing.payloadHash !== payloadHash) {
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
  const { store, settings } = deps;
  const keys = deps.keys.in(registration.shard);
  const { now } = context;
  const log = { registrationId: registration.registrationId, customerId: registration.customerId };

  if (registration.state === 'EMAIL_PENDING' && registration.keyId) {
    // Association and record were done; only the email is owed.
    return finishOwedEmail(registration, registration.keyId, now, deps);
  }

  assertLeaseLeft(registration, deps);
  const key: IssuedKey = await keys.ensureKey(
    {
      name: keyNameFor(settings.keyNamePrefix, registration.registrationId),
      customerId: registration.customerId,
      description: `keyplan key of customer ${registration.customerId}`,
      tags: {
        'keyplan:managed': 'true',
        'keyplan:stage': settings.stage,
        'keyplan:customer': registration.customerId,
        'keyplan:registration': registration.registrationId,
      },
    },
    { lookupFirst: context.mayHaveKey },
  );
  logger.info('api key ready', { ...log, keyId: key.id });
  assertLeaseLeft(registration, deps);
  await associateOrRollBack(registration, key, now, deps);

  const rotateAt = new Date(now.getTime() + settings.rotationDays * DAY_MS).toISOString();
  const record = (state: 'ACTIVE' | 'EMAIL_PENDING') => {
    const fingerprint = key.secret.fingerprint();
    const events = [
      event('KeyProvisioned', {
        keyId: key.id,
        registrationId: registration.registrationId,
        tier: registration.tier,
        usagePlanId: registration.usagePlanId,
        shard: registration.shard,
        fingerprint,
        rotateAt,
      }),
      ...(registration.reactivate
        ? [event('CustomerReactivated', { registrationId: registration.registrationId, tier: registration.tier })]
        : []),
      ...(state === 'ACTIVE' ? [event('KeyEmailed', { keyId: key.id, fingerprint, reason: 'registration' })] : []),
    ];
    return store.recordKey({ registration, keyId: key.id, fingerprint, state, rotateAt, now, events });
  };

  try {
    // The customer is reserved for this registration: the key is emailed only while that holds.
    assertLeaseLeft(registration, deps);
    await sendKeyEmail(registration, key.secret, deps);
  } catch (error) {
    if (error instanceof RegistrationInProgressError) throw error;
    logger.error('key email failed; registration left EMAIL_PENDING', { ...log, keyId: key.id, error });
    countMetric('EmailsFailed');
    const pending = await record('EMAIL_PENDING');
    countShardMetric('KeysProvisioned', shardOf(deps.settings.shards, registration.shard).id);
    return pending;
  }
  const completed = await record('ACTIVE');
  logger.info('registration complete', { ...log, keyId: key.id, state: completed.state });
  countShardMetric('KeysProvisioned', shardOf(deps.settings.shards, registration.shard).id);
  return completed;
}

/**
 * Sends the email an EMAIL_PENDING registration owes and completes it, under the customer's lease
 * (taken over with the registration). Its key was made, put into its plan and recorded long ago,
 * perhaps: since then a tier change may have moved it, or a rotation replaced it and emailed the
 * successor, or a revocation disabled it. So the email quotes the customer's tier of now, and a
 * key that is no longer ACTIVE is not sent at all: the customer must not be handed a key on its
 * way out, nor one older than a successor already emailed. Only the registration and the
 * customer's `emailedKeyId` are written: nothing a tier change or a revocation wrote is undone.
 */
async function finishOwedEmail(
  registration: Registration,
  keyId: string,
  now: Date,
  deps: ProvisioningDeps,
): Promise<Registration> {
  const log = { registrationId: registration.registrationId, customerId: registration.customerId, keyId };
  const customer = await deps.store.getCustomer(registration.customerId);
  const key = customer?.keys.find((candidate) => candidate.keyId === keyId);
  const revoked = customer?.status === 'REVOKED';
  let emailed = false;
  if (!customer || revoked || key?.state !== 'ACTIVE') {
    logger.warn('owed key email not sent: the key was replaced or disabled since', { ...log, keyState: key?.state });
  } else {
    const secret = await deps.keys.in(key.shard).getKeyValue(keyId);
    const usagePlanId = key.usagePlanId;
    try {
      assertLeaseLeft(registration, deps);
      await sendKeyEmail({ ...registration, tier: customer.tier, usagePlanId, shard: key.shard }, secret, deps);
      emailed = true;
    } catch (error) {
      if (error instanceof RegistrationInProgressError) throw error;
      logger.error('key email failed; registration left EMAIL_PENDING', { ...log, error });
      countMetric('EmailsFailed');
      // Still owed: the sweep tries again. The lease goes, so the customer is not held meanwhile.
      await deps.store.releaseLease(registration, now);
      return registration;
    }
  }
  const state = revoked ? 'REVOKED' : 'ACTIVE';
  await deps.ledger
    .commit(
      registration.customerId,
      registration.attemptId,
      {
        emailedKeyId: emailed ? keyId : undefined,
        registration: { registrationId: registration.registrationId, state, attemptId: registration.attemptId },
        events: emailed ? [event('KeyEmailed', { keyId, fingerprint: key?.fingerprint, reason: 'owed' })] : [],
      },
      now,
      customer?.eventSeq,
    )
    .catch((error: unknown) => {
      if (error instanceof CustomerBusyError) {
        throw new RegistrationInProgressError('another attempt took over this registration', 1);
      }
      throw error;
    });
  if (emailed) logger.info('registration complete', { ...log, state });
  return { ...registration, state, leaseExpiresAt: 0, updatedAt: now.toISOString() };
}

/**
 * Before a side effect: the registration's lease (and with it the customer's) must have a third
 * of its time left, or this attempt stops and leaves the rest to the next one, which finds the key
 * by its name. Never a key made or emailed by an attempt whose lease may have passed to another.
 */
function assertLeaseLeft(registration: Registration, deps: ProvisioningDeps): void {
  const left = registration.leaseExpiresAt - deps.clock().getTime();
  if (left < (deps.settings.leaseSeconds * 1000) / 3) {
    throw new RegistrationInProgressError(`the lease on registration ${registration.registrationId} ran out`, 1);
  }
}

async function sendKeyEmail(registration: Registration, secret: ApiKeySecret, deps: ProvisioningDeps) {
  const limits = await deps.keys.in(registration.shard).getPlanLimits(registration.usagePlanId);
  const { baseUrl } = shardOf(deps.settings.shards, registration.shard);
  await deps.mailer.send(
    buildKeyEmail({ to: registration.email, name: registration.name, tier: registration.tier, secret, limits, baseUrl }),
  );
}

async function associateOrRollBack(registration: Registration, key: IssuedKey, now: Date, deps: ProvisioningDeps) {
  try {
    await deps.keys.in(registration.shard).addKeyToPlan(registration.usagePlanId, key.id);
  } catch (error) {
    if (!(error instanceof AssociationRejectedError)) throw error;
    if (key.found) {
      // An earlier attempt made this key and may have emailed it: never deleted. The
      // registration stays resumable (the sweep, then an operator after its last try).
      throw new TransientAwsError('API Gateway refused a key an earlier attempt made; left for a later attempt', 60, {
        cause: error,
      });
    }
    await rollBack(registration, key.id, now, deps, { reason: 'association-rejected', error });
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
    await deps.keys.in(registration.shard).deleteKey(keyId);
    logger.warn('api key rolled back', { ...log, reason: failure.reason });
    countMetric('Rollbacks');
  } catch (deleteError) {
    orphanKeyId = keyId;
    logger.error('rollback failed; key recorded as orphan', { ...log, reason: failure.reason, error: deleteError });
    countMetric('OrphansRecorded');
  }
  await deps.store.recordFailure({
    registration,
    reason: failure.reason,
    detail: failure.error.message,
    orphanKeyId,
    now,
    events: [
      event('RegistrationFailed', {
        registrationId: registration.registrationId,
        tier: registration.tier,
        reason: failure.reason,
        shard: registration.shard,
      }),
    ],
  });
  throw new ProvisioningFailedError(failure.reason, { cause: failure.error });
}
