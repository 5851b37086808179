import { event } from '../core/events';
import { acquireCustomer, type HeldLease, type LeaseDeps } from '../core/customer-lease';
import type { CustomerLedger } from '../core/customer-record';
import { buildKeyEmail } from '../core/key-email';
import { type CustomerKey, DAY_MS, DUE } from '../core/model';
import type { KeyGateway, KeyStore, Mailer, RegistrationStore } from '../core/ports';
import { keyShardOf, planIn, type Shard, type ShardKeys, shardOf } from '../core/shards';
import type { CustomerRecord } from '../core/customer-record';
import { keyNameFor } from '../core/registration';
import { AssociationRejectedError, RotationIncompleteError, ValidationError } from '../errors';
import { logger } from '../logger';
import { countMetric, countShardMetric } from '../metrics';

export interface RotationSettings {
  /** Where keys are made; the first is the home shard (core/shards.ts). */
  shards: readonly Shard[];
  keyNamePrefix: string;
  /** Every key keyplan makes is tagged with its stage; the reconciler touches only its own. */
  stage: string;
  rotationDays: number;
  graceDays: number;
  reminderDays: number;
  keyRetentionDays: number;
  leaseSeconds: number;
  sweepSeconds: number;
}

export interface RotationDeps extends LeaseDeps {
  keys: ShardKeys<Omit<KeyGateway, 'getUsage'>>;
  keyStore: KeyStore;
  ledger: CustomerLedger;
  /** For the reminder's address. */
  store: Pick<RegistrationStore, 'getCustomer'>;
  mailer: Mailer;
  settings: RotationSettings;
}

export type RotationResult =
  | { outcome: 'rotated'; oldKeyId: string; newKeyId: string; retireAt: string }
  | { outcome: 'skipped'; oldKeyId: string; reason: 'not-active' | 'customer-not-active' };

/**
 * Issues a successor for one key in its customer's plan, emails it, and records the old key
 * RETIRING with `retireAt = now + graceDays` (with a grace of 0 the old key is disabled at once).
 * Five AWS calls: take the customer's lease (which also checks that the customer is ACTIVE and
 * the key still ACTIVE in its list, and returns the address and tier), create, associate, email,
 * and write both keys with the lease's release.
 *
 * The lease is must-finish: from the first side effect on, an attempt that dies or fails leaves
 * the rest to the sweep, which resumes the rotation and finds the successor by its name (derived
 * from the registration and the generation) instead of making a second one. The successor is
 * emailed only under a lease checked just before, and the old key retires only once it was.
 *
 * @throws CustomerBusyError while another operation holds the customer
 * @throws RotationIncompleteError when API Gateway refused the successor (deleted again)
 * @throws TransientAwsError (or anything unexpected) after handing the rotation to the sweep
 */
export async function rotateKey(
  key: CustomerKey,
  options: { now: Date; graceDays: number; toShard?: string | undefined },
  deps: RotationDeps,
): Promise<RotationResult> {
  const taken = await acquireCustomer(
    key.customerId,
    {
      intent: { operation: 'rotate', keyId: key.keyId, graceDays: options.graceDays, toShard: options.toShard },
      mustFinish: true,
      status: ['ACTIVE'],
      key: { keyId: key.keyId, states: ['ACTIVE'] },
    },
    deps,
  );
  if (taken.kind === 'refused') {
    const reason = taken.customer.status === 'ACTIVE' ? 'not-active' : 'customer-not-active';
    return { outcome: 'skipped', oldKeyId: key.keyId, reason };
  }
  return rotateUnderLease(taken.lease, key, { ...options, resumed: false }, deps);
}

/**
 * The rotation's steps under a lease already held (by rotateKey, or by the sweep resuming a
 * rotation whose holder died: then `resumed`, and the successor may already exist).
 */
export async function rotateUnderLease(
  lease: HeldLease,
  old: CustomerKey,
  options: { now: Date; graceDays: number; resumed: boolean; toShard?: string | undefined },
  deps: RotationDeps,
): Promise<RotationResult> {
  const { now, graceDays } = options;
  const { settings } = deps;
  const customer = lease.customer;
  // The successor is made where the customer's keys are made now, or where a drain moves it.
  const shard = shardOf(settings.shards, options.toShard ?? customer.shard ?? old.shard);
  const keys = deps.keys.in(shard.id);
  const usagePlanId = planIn(shard, customer.tier);
  if (!usagePlanId) {
    await lease.release();
    throw new ValidationError('tier', `the customer's tier "${customer.tier}" has no usage plan`);
  }
  const log = { customerId: old.customerId, keyId: old.keyId };

  return lease.run(async () => {
    const generation = old.generation + 1;
    // A move takes its room in the target before it makes anything there: once the successor is
    // emailed it must be recorded, full or not. A resumed one inherits the count of the lease it
    // took over; one whose holder died before it had a place made nothing yet, and takes one now.
    if (options.toShard && shard.highWaterKeys !== undefined) {
      await lease.place({ shardId: shard.id, highWaterKeys: shard.highWaterKeys });
    }
    await lease.ensure();
    const successor = await keys.ensureKey(
      {
        name: successorName(settings.keyNamePrefix, old, generation),
        customerId: old.customerId,
        description: `keyplan key of customer ${old.customerId} (rotation ${generation})`,
        tags: {
          'keyplan:managed': 'true',
          'keyplan:stage': settings.stage,
          'keyplan:customer': old.customerId,
          'keyplan:registration': old.registrationId,
          'keyplan:replaces': old.keyId,
        },
      },
      { lookupFirst: options.resumed },
    );
    await lease.ensure();
    try {
      await keys.addKeyToPlan(usagePlanId, successor.id);
    } catch (error) {
      if (!(error instanceof AssociationRejectedError)) throw error;
      // A successor an earlier attempt made may have been emailed: it stays, and the sweep tries
      // again (abandoned with the lease). One this attempt made was never emailed and is recorded
      // nowhere: deleting it leaves the customer as before.
      if (successor.found) throw new RotationIncompleteError('API Gateway refused the successor key', { cause: error });
      await keys.deleteKey(successor.id);
      await lease.release();
      throw new RotationIncompleteError('API Gateway refused the successor key', { cause: error });
    }

    const retireAt = new Date(now.getTime() + graceDays * DAY_MS);
    await lease.ensure();
    try {
      await deps.mailer.send(
        buildKeyEmail({
          to: customer.email,
          tier: customer.tier,
          secret: successor.secret,
          limits: await keys.getPlanLimits(usagePlanId),
          baseUrl: shard.baseUrl,
          replaces: { fingerprint: old.fingerprint, until: retireAt },
        }),
      );
    } catch (error) {
      // The old key keeps working; the sweep sends the successor again (it may have arrived).
      logger.error('rotation email failed; old key not retired', { ...log, newKeyId: successor.id, error });
      countMetric('EmailsFailed');
      throw new RotationIncompleteError('the new key could not be emailed', { cause: error });
    }

    const reminderAt = new Date(retireAt.getTime() - settings.reminderDays * DAY_MS);
    const rotateAt = new Date(now.getTime() + settings.rotationDays * DAY_MS).toISOString();
    await lease.commit(
      {
        keys: { [old.keyId]: 'RETIRING', [successor.id]: 'ACTIVE' },
        emailedKeyId: successor.id,
        ...movedTo(customer, shard, settings.shards),
        events: [
          event('KeyRotated', {
            oldKeyId: old.keyId,
            newKeyId: successor.id,
            retireAt: retireAt.toISOString(),
            graceDays,
            tier: customer.tier,
            usagePlanId,
            shard: shard.id,
            fromShard: shardOf(settings.shards, old.shard).id,
            fingerprint: successor.secret.fingerprint(),
          }),
          event('KeyEmailed', { keyId: successor.id, fingerprint: successor.secret.fingerprint(), reason: 'rotation' }),
        ],
        placedKeys: shard.highWaterKeys === undefined || lease.placed === shard.id ? undefined : { [shard.id]: 1 },
        items: [
          {
            kind: 'update',
            keyId: old.keyId,
            set: { state: 'RETIRING', retireAt: retireAt.toISOString(), successorKeyId: successor.id },
            due:
              settings.reminderDays > 0 && reminderAt > now
                ? { type: DUE.remind, at: reminderAt.toISOString() }
                : { type: DUE.retire, at: retireAt.toISOString() },
          },
          {
            kind: 'put',
            key: {
              customerId: old.customerId,
              keyId: successor.id,
              state: 'ACTIVE',
              usagePlanId,
              tier: customer.tier,
              shard: shard.id,
              fingerprint: successor.secret.fingerprint(),
              registrationId: old.registrationId,
              createdAt: now.toISOString(),
              rotateAt,
              generation,
            },
            due: { type: DUE.rotate, at: rotateAt },
            replaces: old.keyId,
          },
        ],
      },
      now,
    );
    logger.info('key rotated', { ...log, newKeyId: successor.id, retireAt: retireAt.toISOString() });
    countShardMetric('Rotations', shard.id);

    if (graceDays === 0) {
      // A leaked key: off as soon as its successor is out. Should this fail, the retirement job
      // finds the key due (RETIRE at now) and finishes it.
      await disableRetiringKey({ ...old, state: 'RETIRING' }, now, deps).catch((error: unknown) => {
        logger.warn('immediate disable failed; the retirement job will finish it', { ...log, error });
      });
    }
    return { outcome: 'rotated' as const, oldKeyId: old.keyId, newKeyId: successor.id, retireAt: retireAt.toISOString() };
  }, 'abandon');
}

/**
 * When the successor is made in another shard than the customer's (a drain), the customer moves
 * there, and every key it keeps in its old shard is noted as living there until it is deleted.
 */
function movedTo(customer: CustomerRecord, target: Shard, shards: readonly Shard[]) {
  const home = shardOf(shards, undefined).id;
  if ((customer.shard ?? home) === target.id) return {};
  const left = Object.keys(customer.keys)
    .map((keyId) => [keyId, keyShardOf(customer, keyId) ?? home] as const)
    .filter(([, shardId]) => shardId !== target.id);
  return { shard: target.id, keyShards: Object.fromEntries(left) };
}

/** Every attempt of one rotation names the same successor, so a resumed one finds it. */
export const successorName = (prefix: string, old: CustomerKey, generation: number) =>
  `${keyNameFor(prefix, old.registrationId)}-g${generation}`;

/**
 * RETIRING -> DISABLED under the customer's lease: the key stops working; it is deleted after the
 * retention period. False when the key is no longer RETIRING in the customer's list.
 */
export async function disableRetiringKey(
  key: CustomerKey,
  now: Date,
  deps: Pick<RotationDeps, 'keys' | 'ledger' | 'clock' | 'settings'>,
): Promise<boolean> {
  const taken = await acquireCustomer(
    key.customerId,
    { intent: { operation: 'retire', keyId: key.keyId }, mustFinish: false, key: { keyId: key.keyId, states: ['RETIRING'] } },
    deps,
  );
  if (taken.kind === 'refused') return false;
  const { lease } = taken;
  return lease.run(async () => {
    await lease.ensure();
    await deps.keys.in(key.shard).disableKey(key.keyId);
    await lease.commit(
      {
        keys: { [key.keyId]: 'DISABLED' },
        events: [event('KeyDisabled', { keyId: key.keyId, reason: 'retired', shard: key.shard })],
        items: [
          {
            kind: 'update',
            keyId: key.keyId,
            set: { state: 'DISABLED' },
            due: { type: DUE.delete, at: new Date(now.getTime() + deps.settings.keyRetentionDays * DAY_MS).toISOString() },
          },
        ],
      },
      now,
    );
    return true;
  }, 'release');
}
