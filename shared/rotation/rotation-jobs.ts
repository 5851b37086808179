import { DUE } from '../aws/table-keys';
import { NotFoundError } from '../errors';
import { logger } from '../logger';
import { countMetric, METRIC } from '../metrics';
import { buildRetirementReminder } from '../provisioning/key-email';
import type { CustomerKey } from '../provisioning/registration';
import { disableRetiringKey, type RotationDeps, type RotationResult, rotateKey } from './rotate-key';

export interface RotationRunReport {
  rotated: number;
  skipped: number;
  failed: number;
  /** Keys still due after this run: more than one batch was due, or some failed. */
  remaining: number;
}

/**
 * The scheduled rotation: at most `limit` keys whose `rotateAt` has passed, found through the
 * sparse due index (never a scan), one by one. A key that fails stays due for the next run.
 */
export async function rotateDueKeys(now: Date, limit: number, deps: RotationDeps): Promise<RotationRunReport> {
  const due = await deps.keyStore.findDue(DUE.rotate, now, limit);
  const report: RotationRunReport = { rotated: 0, skipped: 0, failed: 0, remaining: 0 };
  for (const key of due) {
    try {
      const result = await rotateKey(key, { now, graceDays: deps.settings.graceDays }, deps);
      report[result.outcome === 'rotated' ? 'rotated' : 'skipped']++;
    } catch (error) {
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
  failed: number;
}

/**
 * The scheduled retirement, each step bounded by `limit`: remind customers whose old key stops
 * working soon, disable keys whose grace is over, delete disabled keys after the retention period.
 * Every step is repeatable: a crash between the AWS call and the record repeats the call, which
 * is harmless for disabling and deleting, and at worst sends a second reminder.
 */
export async function retireDueKeys(now: Date, limit: number, deps: RotationDeps): Promise<RetirementRunReport> {
  const report: RetirementRunReport = { reminded: 0, disabled: 0, deleted: 0, failed: 0 };
  const step = async (dueType: (typeof DUE)[keyof typeof DUE], counter: keyof RetirementRunReport, act: (key: CustomerKey) => Promise<unknown>) => {
    for (const key of await deps.keyStore.findDue(dueType, now, limit)) {
      try {
        await act(key);
        report[counter]++;
      } catch (error) {
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
    await deps.keyStore.advance(key, DUE.remind, { dueType: DUE.retire, dueAt: key.retireAt ?? now.toISOString() }, now);
  });
  await step(DUE.retire, 'disabled', (key) => disableRetiringKey(key, now, deps));
  await step(DUE.delete, 'deleted', async (key) => {
    await deps.keys.deleteKey(key.keyId);
    await deps.keyStore.advance(key, DUE.delete, { state: 'DELETED' }, now);
  });
  countMetric(METRIC.keysDisabled, report.disabled);
  countMetric(METRIC.keysDeleted, report.deleted);
  logger.info('retirement run finished', { ...report });
  return report;
}
