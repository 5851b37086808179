import { randomUUID } from 'node:crypto';
import { DAY_MS, DUE } from '../aws/table-keys';
import { AssociationRejectedError, NotFoundError, RotationIncompleteError } from '../errors';
import { logger } from '../logger';
import { countMetric, METRIC } from '../metrics';
import { buildKeyEmail } from '../provisioning/key-email';
import type { KeyGateway, Mailer, RegistrationStore } from '../provisioning/ports';
import { type CustomerKey, keyNameFor } from '../provisioning/registration';
import type { KeyStore, RotationAttempt } from './ports';
import type { CustomerLock } from '../customers/ports';
import { withCustomerLock } from '../customers/with-customer-lock';

export interface RotationSettings {
  keyNamePrefix: string;
  rotationDays: number;
  graceDays: number;
  reminderDays: number;
  keyRetentionDays: number;
  leaseSeconds: number;
}

export interface RotationDeps {
  keys: KeyGateway;
  keyStore: KeyStore;
  /** Keeps a rotation from interleaving with a tier change or a revocation of the customer. */
  lock: CustomerLock;
  /** For the customer's email address and name. */
  store: RegistrationStore;
  mailer: Mailer;
  settings: RotationSettings;
}

export type RotationResult =
  | { outcome: 'rotated'; oldKeyId: string; newKeyId: string; retireAt: string }
  | { outcome: 'skipped'; oldKeyId: string; reason: 'not-active' | 'in-progress' };

/**
 * Issues a successor for one key in the same usage plan, emails it, and marks the old key RETIRING
 * with `retireAt = now + graceDays` (with a grace of 0 the old key is disabled at once).
 *
 * Resumable like registration: the claim on the old key item keeps overlapping runs apart, the
 * successor's name is derived from the registration and its generation (so a resumed attempt
 * finds the successor a crashed one created), and the old key is retired only once the new one
 * has been emailed.
 *
 * @throws RotationIncompleteError when the email failed or API Gateway refused the successor
 * @throws TransientAwsError when AWS keeps throttling; the claim is released for the next run
 */
export async function rotateKey(
  key: CustomerKey,
  options: { now: Date; graceDays: number },
  deps: RotationDeps,
): Promise<RotationResult> {
  return withCustomerLock(
    deps.lock,
    { customerId: key.customerId, operation: 'rotate', leaseSeconds: deps.settings.leaseSeconds, now: options.now },
    () => rotateKeyLocked(key, options, deps),
  );
}

async function rotateKeyLocked(
  key: CustomerKey,
  options: { now: Date; graceDays: number },
  deps: RotationDeps,
): Promise<RotationResult> {
  const { now, graceDays } = options;
  const { keys, keyStore, settings } = deps;
  const attempt: RotationAttempt = { attemptId: randomUUID(), leaseExpiresAt: now.getTime() + settings.leaseSeconds * 1000 };
  const claimed = await keyStore.claimRotation(key, attempt, now);
  if (!claimed) {
    return { outcome: 'skipped', oldKeyId: key.keyId, reason: key.state === 'ACTIVE' ? 'in-progress' : 'not-active' };
  }
  const old = claimed.key;
  const log = { customerId: old.customerId, keyId: old.keyId };

  try {
    const generation = old.generation + 1;
    const successor = await keys.ensureKey(
      {
        name: `${keyNameFor(settings.keyNamePrefix, old.registrationId)}-g${generation}`,
        customerId: old.customerId,
        description: `keyplan key of customer ${old.customerId} (rotation ${generation})`,
        tags: {
          'keyplan:managed': 'true',
          'keyplan:customer': old.customerId,
          'keyplan:registration': old.registrationId,
          'keyplan:replaces': old.keyId,
        },
      },
      { lookupFirst: claimed.resumed },
    );
    await associateOrGiveBack(old, successor.id, deps);

    const retireAt = new Date(now.getTime() + graceDays * DAY_MS);
    const customer = await deps.store.getCustomer(old.customerId);
    if (!customer) throw new NotFoundError(`no customer ${old.customerId}`);
    try {
      await deps.mailer.send(
        buildKeyEmail({
          to: customer.email,
          tier: old.tier,
          secret: successor.secret,
          limits: await keys.getPlanLimits(old.usagePlanId),
          replaces: { fingerprint: old.fingerprint, until: retireAt },
        }),
      );
    } catch (error) {
      // The old key keeps working until its successor has reached the customer.
      logger.error('rotation email failed; old key not retired', { ...log, newKeyId: successor.id, error });
      countMetric(METRIC.emailsFailed);
      throw new RotationIncompleteError('the new key could not be emailed', { cause: error });
    }

    const reminderAt = new Date(retireAt.getTime() - settings.reminderDays * DAY_MS);
    await keyStore.recordRotation({
      oldKey: old,
      attempt,
      successor: {
        keyId: successor.id,
        fingerprint: successor.secret.fingerprint(),
        generation,
        rotateAt: new Date(now.getTime() + settings.rotationDays * DAY_MS).toISOString(),
      },
      retireAt: retireAt.toISOString(),
      next:
        settings.reminderDays > 0 && reminderAt > now
          ? { dueType: DUE.remind, dueAt: reminderAt.toISOString() }
          : { dueType: DUE.retire, dueAt: retireAt.toISOString() },
      now,
    });
    logger.info('key rotated', { ...log, newKeyId: successor.id, retireAt: retireAt.toISOString() });
    countMetric(METRIC.rotations);

    const rotated = { outcome: 'rotated' as const, oldKeyId: old.keyId, newKeyId: successor.id, retireAt: retireAt.toISOString() };
    if (graceDays === 0) {
      // A leaked key: off as soon as its successor is out. Should this fail, the retirement job
      // finds the key due (RETIRE at now) and finishes it.
      await disableRetiringKey({ ...old, state: 'RETIRING' }, now, deps).catch((error: unknown) => {
        logger.warn('immediate disable failed; the retirement job will finish it', { ...log, error });
      });
    }
    return rotated;
  } catch (error) {
    await keyStore.releaseRotation(old, attempt).catch((releaseError: unknown) => {
      logger.warn('rotation claim release failed', { ...log, error: releaseError });
    });
    throw error;
  }
}

async function associateOrGiveBack(old: CustomerKey, successorId: string, deps: RotationDeps): Promise<void> {
  try {
    await deps.keys.addKeyToPlan(old.usagePlanId, successorId);
  } catch (error) {
    if (!(error instanceof AssociationRejectedError)) throw error;
    // Nothing points at the successor yet; deleting it leaves the customer as before. A failed
    // delete leaves a tagged key in no plan, which the reconciler removes.
    await deps.keys.deleteKey(successorId).catch((deleteError: unknown) => {
      logger.error('successor rollback failed', { customerId: old.customerId, keyId: successorId, error: deleteError });
    });
    throw new RotationIncompleteError('API Gateway refused the successor key', { cause: error });
  }
}

/** RETIRING -> DISABLED: the key stops working; it is deleted after the retention period. */
export async function disableRetiringKey(key: CustomerKey, now: Date, deps: Pick<RotationDeps, 'keys' | 'keyStore' | 'settings'>) {
  await deps.keys.disableKey(key.keyId);
  return deps.keyStore.advance(
    key,
    DUE.retire,
    {
      state: 'DISABLED',
      dueType: DUE.delete,
      dueAt: new Date(now.getTime() + deps.settings.keyRetentionDays * DAY_MS).toISOString(),
    },
    now,
  );
}
