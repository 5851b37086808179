import { event } from '../core/events';
import { acquireCustomer } from '../core/customer-lease';
import { buildRetirementReminder } from '../core/key-email';
import { type CustomerKey, DUE, type DueType } from '../core/model';
import type { KeyStore } from '../core/ports';
import { shardOf } from '../core/shards';
import { CustomerBusyError, NotFoundError } from '../errors';
import { logger } from '../logger';
import { countMetric } from '../metrics';
import { disableRetiringKey, type RotationDeps, type RotationResult, type RotationSettings, rotateKey } from './rotate-key';

export interface RotationRunReport {
  rotated: number;
  skipped: number;
  /** Another operation held the customer; the key stays due. */
  busy: number;
  failed: number;
  /** Keys still due after this run: more than one batch was due, or some failed. */
  remaining: number;
}

/**
 * The scheduled rotation: at most `limit` keys whose `rotateAt` has passed by `now` (the
 * schedule's time: a late or repeated event finds the same keys, already rotated ones skipped by
 * the lease's check), found through the sparse due index (never a scan), one by one. A key that
 * fails stays due for the next run.
 */
export async function rotateDueKeys(now: Date, limit: number, deps: RotationDeps): Promise<RotationRunReport> {
  const due = await deps.keyStore.findDue(DUE.rotate, now, limit);
  const report: RotationRunReport = { rotated: 0, skipped: 0, busy: 0, failed: 0, remaining: 0 };
  for (const key of due) {
    try {
      const result = await rotateKey(key, { now, graceDays: deps.settings.graceDays }, deps);
      report[result.outcome === 'rotated' ? 'rotated' : 'skipped']++;
    } catch (error) {
      if (error instanceof CustomerBusyError) {
        report.busy++;
        continue;
      }
      report.failed++;
      logger.error('rotation failed; the key stays due', { customerId: key.customerId, keyId: key.keyId, error });
    }
  }
  report.remaining = await deps.keyStore.countDue(DUE.rotate, now);
  logger.info('rotation run finished', { ...report });
  return report;
}

/**
 * Rotates every ACTIVE key of one customer now (a leaked key): with `graceDays` 0 the old keys
 * stop working as soon as their successors are emailed; without it, the configured grace.
 * @throws NotFoundError when the customer has no keys
 */
export async function rotateCustomerKeys(
  customerId: string,
  options: { now: Date; graceDays?: number | undefined },
  deps: RotationDeps,
): Promise<{ customerId: string; graceDays: number; rotations: RotationResult[] }> {
  const graceDays = options.graceDays ?? deps.settings.graceDays;
  const keys = await deps.keyStore.keysOf(customerId);
  if (keys.length === 0) throw new NotFoundError(`no customer ${customerId}`);
  const rotations: RotationResult[] = [];
  for (const key of keys.filter((k) => k.state === 'ACTIVE')) {
    rotations.push(await rotateKey(key, { now: options.now, graceDays }, deps));
  }
  return { customerId, graceDays, rotations };
}

export interface RetirementRunReport {
  reminded: number;
  disabled: number;
  deleted: number;
  /** Another operation held the customer; the key stays due. */
  busy: number;
  failed: number;
}

/**
 * The scheduled retirement, each step bounded by `limit`: remind customers whose old key stops
 * working soon, disable keys whose grace is over, delete disabled keys after the retention period.
 * Every step is repeatable: a crash between the AWS call and the record repeats the call, which
 * is harmless for disabling and deleting, and at worst sends a second reminder.
 */
export async function retireDueKeys(now: Date, limit: number, deps: RotationDeps): Promise<RetirementRunReport> {
  const report: RetirementRunReport = { reminded: 0, disabled: 0, deleted: 0, busy: 0, failed: 0 };
  const step = async (
    dueType: (typeof DUE)[keyof typeof DUE],
    counter: keyof RetirementRunReport,
    act: (key: CustomerKey) => Promise<boolean>,
  ) => {
    for (const key of await deps.keyStore.findDue(dueType, now, limit)) {
      try {
        if (await act(key)) report[counter]++;
      } catch (error) {
        if (error instanceof CustomerBusyError) {
          report.busy++;
          continue;
        }
        report.failed++;
        logger.error('retirement step failed; the key stays due', { customerId: key.customerId, keyId: key.keyId, dueType, error });
      }
    }
  };

  await step(DUE.remind, 'reminded', async (key) => {
    const customer = await deps.store.getCustomer(key.customerId);
    if (customer && key.retireAt) {
      await deps.mailer.send(
        buildRetirementReminder({ to: customer.email, fingerprint: key.fingerprint, until: new Date(key.retireAt) }),
      );
    }
    // Only the key's place in the due index changes: no lease needed, the condition on the place suffices.
    return deps.keyStore.advance(key, DUE.remind, { dueType: DUE.retire, dueAt: key.retireAt ?? now.toISOString() }, now);
  });
  await step(DUE.retire, 'disabled', (key) => disableRetiringKey(key, now, deps));
  await step(DUE.delete, 'deleted', (key) => deleteDisabledKey(key, now, deps));
  countMetric('KeysDisabled', report.disabled);
  countMetric('KeysDeleted', report.deleted);
  logger.info('retirement run finished', { ...report });
  return report;
}

/**
 * DISABLED -> DELETED under the customer's lease, after a fresh look at the customer's list: never
 * the newest key the customer was emailed (its successor's email would have moved that on).
 */
async function deleteDisabledKey(key: CustomerKey, now: Date, deps: RotationDeps): Promise<boolean> {
  const taken = await acquireCustomer(
    key.customerId,
    { intent: { operation: 'retire', keyId: key.keyId }, mustFinish: false, key: { keyId: key.keyId, states: ['DISABLED'] } },
    deps,
  );
  if (taken.kind === 'refused') return false;
  const { lease } = taken;
  return lease.run(async () => {
    if (lease.customer.emailedKeyId === key.keyId && lease.customer.status !== 'REVOKED') {
      logger.warn('disabled key is the newest the customer was emailed; not deleted', { customerId: key.customerId, keyId: key.keyId });
      return false;
    }
    await lease.ensure();
    await deps.keys.in(key.shard).deleteKey(key.keyId);
    const shard = shardOf(deps.settings.shards, key.shard);
    const away = lease.customer.keyShards ?? {};
    await lease.commit(
      {
        keys: { [key.keyId]: null },
        items: [{ kind: 'update', keyId: key.keyId, set: { state: 'DELETED' }, due: null }],
        events: [event('KeyDeleted', { keyId: key.keyId, shard: shard.id })],
        keyShards: Object.hasOwn(away, key.keyId)
          ? Object.fromEntries(Object.entries(away).filter(([keyId]) => keyId !== key.keyId))
          : undefined,
        placedKeys: shard.highWaterKeys === undefined ? undefined : { [shard.id]: -1 },
      },
      now,
    );
    return true;
  }, 'release');
}

/** A key waiting in the due index, as a dry run shows it. */
export interface DueKey {
  keyId: string;
  customerId: string;
  /** The shard holding the key (the home shard's id for keys that name none). */
  shard: string;
  state: CustomerKey['state'];
  rotateAt?: string | undefined;
  retireAt?: string | undefined;
}

/** What one partition of the due index holds for a run: the keys it takes (one batch) and all due. */
export interface DueBatch {
  keys: DueKey[];
  /** Every key due by then, the batch's included: more than the batch waits for later runs. */
  totalDue: number;
}

export const dueKey = (key: CustomerKey, settings: Pick<RotationSettings, 'shards'>): DueKey => ({
  keyId: key.keyId,
  customerId: key.customerId,
  shard: key.shard ?? settings.shards[0]!.id,
  state: key.state,
  rotateAt: key.rotateAt,
  retireAt: key.retireAt,
});

/**
 * What rotateDueKeys(at, limit) would rotate, changing nothing: the same read of the due index
 * (the oldest `limit` keys whose rotateAt has passed by `at`), and how many are due in all. A key
 * whose customer is no longer ACTIVE is listed too: the run would find that under the lease and
 * skip it.
 */
export async function findDueRotations(
  at: Date,
  limit: number,
  deps: { keyStore: Pick<KeyStore, 'findDue' | 'countDue'>; settings: Pick<RotationSettings, 'shards'> },
): Promise<DueBatch> {
  const [keys, totalDue] = await Promise.all([deps.keyStore.findDue(DUE.rotate, at, limit), deps.keyStore.countDue(DUE.rotate, at)]);
  return { keys: keys.map((key) => dueKey(key, deps.settings)), totalDue };
}

export interface DueRetirements {
  /** Reminders: the customer is told the old key stops soon. */
  remind: DueBatch;
  /** Keys disabled: their grace is over (reminded ones too, when it is over by then). */
  retire: DueBatch;
  /** Disabled keys deleted after the retention period. */
  delete: DueBatch;
}

/**
 * What retireDueKeys(at, limit) would do, changing nothing: the keys due in each of its steps.
 * The run takes the steps in order, so a key it reminds whose grace is over by `at` moves on to
 * the disabling step of the same run, and a key it disables is due for deletion in the same run
 * when the retention is 0: both are listed where the run would act on them.
 */
export async function findDueRetirements(
  at: Date,
  limit: number,
  deps: { keyStore: Pick<KeyStore, 'findDue' | 'countDue'>; settings: Pick<RotationSettings, 'shards' | 'keyRetentionDays'> },
): Promise<DueRetirements> {
  const read = (dueType: DueType) =>
    Promise.all([deps.keyStore.findDue(dueType, at, limit), deps.keyStore.countDue(dueType, at)] as const);
  const [[remind, remindTotal], [retire, retireTotal], [remove, removeTotal]] = await Promise.all([
    read(DUE.remind),
    read(DUE.retire),
    read(DUE.delete),
  ]);
  const byRetireAt = (a: CustomerKey, b: CustomerKey) => (a.retireAt ?? '').localeCompare(b.retireAt ?? '');
  const graceOver = remind.filter((key) => key.retireAt !== undefined && key.retireAt <= at.toISOString());
  const disabled = [...retire, ...graceOver].sort(byRetireAt).slice(0, limit);
  const deletedAtOnce = deps.settings.keyRetentionDays === 0 ? disabled : [];
  const batch = (keys: CustomerKey[], totalDue: number): DueBatch => ({
    keys: keys.map((key) => dueKey(key, deps.settings)),
    totalDue,
  });
  return {
    remind: batch(remind, remindTotal),
    retire: batch(disabled, retireTotal + graceOver.length),
    delete: batch([...remove, ...deletedAtOnce].slice(0, limit), removeTotal + deletedAtOnce.length),
  };
}
