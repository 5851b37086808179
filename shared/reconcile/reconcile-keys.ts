import { withCustomerLock } from '../customers/with-customer-lock';
import { CustomerBusyError } from '../errors';
import { usagePlanOf } from '../config';
import { logger } from '../logger';
import { countMetric, METRIC } from '../metrics';
import type { KeyRecord, ListedKey, ReconcileDeps } from './ports';

/** API keys per account and Region; not adjustable (DESIGN §6). Disabled keys count until deleted. */
export const ACCOUNT_KEY_CEILING = 10_000;
/** From this share of the ceiling on, every run warns. */
export const KEY_CEILING_WARNING = 0.8;

/** What a run does (or, dry, would do); ids only, never a key value. */
export type ReconcileAction =
  | { kind: 'delete-orphan'; keyId: string; customerId?: string | undefined; reason: 'no-record' | 'orphan-record' }
  | { kind: 'repair-plan'; keyId: string; customerId: string; fromPlans: string[]; toPlan: string }
  | { kind: 'mark-missing'; keyId: string; customerId: string }
  | { kind: 'close-orphan-record'; keyId: string; customerId: string };

type ActionKind = ReconcileAction['kind'];
type ActionCounts = Record<ActionKind, number>;

export interface ReconcileReport {
  dryRun: boolean;
  at: string;
  /** Every key of the account and Region, managed or not: they all count against the ceiling. */
  accountKeys: number;
  keyCeiling: number;
  ceilingUsedPercent: number;
  nearCeiling: boolean;
  managedKeys: number;
  trackedRecords: number;
  /** Keys or records too young to judge: a registration may still be writing them. */
  skippedTooYoung: number;
  /** Found out of place, per kind of action. */
  found: ActionCounts;
  /** Repaired, per kind; all zero in a dry run. */
  done: ActionCounts;
  /** Repairs left for the next run because another change to the customer held its lock. */
  busy: number;
  failures: number;
  actions: ReconcileAction[];
}

const LIVE_STATES: ReadonlySet<string> = new Set(['ACTIVE', 'RETIRING']);
const noActions = (): ActionCounts => ({ 'delete-orphan': 0, 'repair-plan': 0, 'mark-missing': 0, 'close-orphan-record': 0 });

/**
 * Compares the managed keys in API Gateway with the table and repairs what drifted (DESIGN §1
 * Reconciliation): a managed key with no live record is an orphan and is deleted; a live key in no
 * plan, the wrong plan or two plans is put into the plan of its customer's tier (under the
 * customer lock, so it cannot race a tier change); a record whose key is gone is marked MISSING.
 * Every read is a listing or a Query, never a scan. With `dryRun` it only reports.
 */
export async function reconcileKeys(
  options: { now: Date; dryRun: boolean },
  deps: ReconcileDeps,
): Promise<ReconcileReport> {
  const { now, dryRun } = options;
  const { inventory, records, settings } = deps;
  const youngerThan = now.getTime() - settings.minKeyAgeMinutes * 60_000;

  // Keys first, then plans, then records: a key made after the listing is simply not judged, and
  // its record, if already written, is recognised by the existence check below.
  let accountKeys = 0;
  const managed = new Map<string, ListedKey>();
  for await (const page of inventory.listKeyPages()) {
    accountKeys += page.length;
    for (const key of page) if (isManaged(key, settings.keyNamePrefix)) managed.set(key.id, key);
  }
  const plansOfKey = new Map<string, string[]>();
  for (const planId of new Set(Object.values(settings.tierMap))) {
    for (const keyId of await inventory.keysInPlan(planId)) plansOfKey.set(keyId, [...(plansOfKey.get(keyId) ?? []), planId]);
  }
  const tracked = new Map<string, KeyRecord>();
  for await (const page of records.trackedKeyPages()) for (const record of page) tracked.set(record.keyId, record);
  const tiers = await records.tiersOf([...new Set([...tracked.values()].map((record) => record.customerId))]);

  const report: ReconcileReport = {
    dryRun,
    at: now.toISOString(),
    accountKeys,
    keyCeiling: ACCOUNT_KEY_CEILING,
    ceilingUsedPercent: Math.round((accountKeys / ACCOUNT_KEY_CEILING) * 1000) / 10,
    nearCeiling: accountKeys >= ACCOUNT_KEY_CEILING * KEY_CEILING_WARNING,
    managedKeys: managed.size,
    trackedRecords: tracked.size,
    skippedTooYoung: 0,
    found: noActions(),
    done: noActions(),
    busy: 0,
    failures: 0,
    actions: [],
  };
  const plan = (action: ReconcileAction) => {
    report.actions.push(action);
    report.found[action.kind]++;
  };
  const expectedPlanOf = (record: KeyRecord) => usagePlanOf(settings.tierMap, tiers.get(record.customerId) ?? record.tier);

  for (const key of managed.values()) {
    const record = tracked.get(key.id);
    if (record && LIVE_STATES.has(record.state)) {
      const expected = expectedPlanOf(record);
      const current = plansOfKey.get(key.id) ?? [];
      if (!expected) {
        logger.warn('reconcile: the customer tier has no usage plan in TIER_MAP; key left as it is', {
          customerId: record.customerId,
          keyId: key.id,
        });
      } else if (current.length !== 1 || current[0] !== expected || record.needsRepair) {
        plan({ kind: 'repair-plan', keyId: key.id, customerId: record.customerId, fromPlans: current, toPlan: expected });
      }
    } else if (record?.state === 'DISABLED') {
      // Retired or revoked: the retirement job deletes it when its retention ends.
    } else if (key.createdAt.getTime() > youngerThan) {
      report.skippedTooYoung++;
    } else {
      plan({
        kind: 'delete-orphan',
        keyId: key.id,
        customerId: record?.customerId ?? key.tags['keyplan:customer'],
        reason: record ? 'orphan-record' : 'no-record',
      });
    }
  }

  for (const record of tracked.values()) {
    if (managed.has(record.keyId)) continue;
    if (record.state === 'ORPHANED') {
      plan({ kind: 'close-orphan-record', keyId: record.keyId, customerId: record.customerId });
    } else if (LIVE_STATES.has(record.state)) {
      // The key may belong to another prefix's listing or have been made after ours: only a key
      // API Gateway no longer knows is missing.
      if (Date.parse(record.createdAt) > youngerThan) report.skippedTooYoung++;
      else if (!(await inventory.keyExists(record.keyId))) {
        plan({ kind: 'mark-missing', keyId: record.keyId, customerId: record.customerId });
      }
    }
  }

  if (!dryRun) {
    for (const action of report.actions) {
      try {
        if (await repair(action, tracked, now, deps)) report.done[action.kind]++;
      } catch (error) {
        if (error instanceof CustomerBusyError) {
          report.busy++;
          continue;
        }
        report.failures++;
        logger.error('reconcile: repair failed; the next run tries again', { ...action, error });
      }
    }
  }

  publishReconcileMetrics(report);
  const summary = { ...report, actions: report.actions.length };
  if (report.nearCeiling) {
    logger.warn('reconcile: the account is near the API key ceiling', {
      accountKeys,
      keyCeiling: ACCOUNT_KEY_CEILING,
      ceilingUsedPercent: report.ceilingUsedPercent,
    });
  }
  logger.info('reconcile run finished', summary);
  return report;
}

function publishReconcileMetrics(report: ReconcileReport): void {
  // A level, not an event: the alarm takes its maximum against 80% of the ceiling.
  countMetric(METRIC.accountKeyCount, report.accountKeys);
  countMetric(METRIC.orphansDeleted, report.done['delete-orphan']);
  countMetric(METRIC.keysRepaired, report.done['repair-plan']);
  countMetric(METRIC.recordsMissing, report.done['mark-missing']);
  countMetric(METRIC.reconcileFailures, report.failures);
}

/** Tagged and named by keyplan; keys of other tools in the account are never touched. */
function isManaged(key: ListedKey, prefix: string): boolean {
  return key.name.startsWith(`${prefix}-`) && key.tags['keyplan:managed'] === 'true';
}

/** Carries out one action; false when a re-check under the lock found nothing left to do. */
async function repair(
  action: ReconcileAction,
  tracked: ReadonlyMap<string, KeyRecord>,
  now: Date,
  deps: ReconcileDeps,
): Promise<boolean> {
  const { inventory, records, settings } = deps;
  const record = tracked.get(action.keyId);
  switch (action.kind) {
    case 'delete-orphan':
      await inventory.deleteKey(action.keyId);
      if (record) await records.recordOrphanDeleted(record, now);
      logger.info('reconcile: orphan key deleted', { ...action });
      return true;
    case 'close-orphan-record':
      if (record) await records.recordOrphanDeleted(record, now);
      return true;
    case 'mark-missing':
      if (record) await records.recordKeyMissing(record, now);
      logger.warn('reconcile: a recorded key no longer exists in API Gateway', { ...action });
      return true;
    case 'repair-plan':
      if (!record) return false;
      return withCustomerLock(
        deps.lock,
        { customerId: action.customerId, operation: 'reconcile', leaseSeconds: settings.leaseSeconds, now },
        () => repairPlan(action, record, now, deps),
      );
  }
}

/**
 * Moves the key into the plan of its customer's tier. The tier is read again under the lock: a
 * tier change that finished since the listing wins. A key cannot be in two plans of one stage, so
 * it leaves the others first; if it cannot enter the right one it goes back where it was, so the
 * customer keeps a working key until the next run.
 */
async function repairPlan(
  action: Extract<ReconcileAction, { kind: 'repair-plan' }>,
  record: KeyRecord,
  now: Date,
  deps: ReconcileDeps,
): Promise<boolean> {
  const { inventory, records, settings } = deps;
  const tier = (await records.tiersOf([record.customerId])).get(record.customerId) ?? record.tier;
  const target = usagePlanOf(settings.tierMap, tier);
  if (!target) return false;
  const leaving = action.fromPlans.filter((planId) => planId !== target);
  try {
    // Inside the try: a removal that took effect but answered an error must still be put back.
    for (const planId of leaving) await inventory.removeKeyFromPlan(planId, action.keyId);
    await inventory.addKeyToPlan(target, action.keyId);
  } catch (error) {
    const [previous] = leaving;
    if (previous) {
      await inventory.addKeyToPlan(previous, action.keyId).catch((restoreError: unknown) => {
        logger.error('reconcile: key could not be put back into its previous plan', {
          ...action,
          error: restoreError,
        });
      });
    }
    throw error;
  }
  await records.recordRepaired(record, target, tier, now);
  logger.info('reconcile: key put into the plan of its tier', { ...action, toPlan: target });
  return true;
}
