import { event } from '../core/events';
import { acquireCustomer, type HeldLease } from '../core/customer-lease';
import { DUE, isLive } from '../core/model';
import { planIn, type Shard, shardOf } from '../core/shards';
import { convergeKeyPlans } from '../customers/converge-plans';
import { CustomerBusyError, LeaseLostError, NotFoundError } from '../errors';
import { logger } from '../logger';
import { countMetric, countShardMetric } from '../metrics';
import type { KeyRecord, ListedKey, ReconcileDeps } from './ports';

/** API keys per account and Region; not adjustable (DESIGN §6). Disabled keys count until deleted. */
export const ACCOUNT_KEY_CEILING = 10_000;
/** From this share of the ceiling on, every run warns. */
export const KEY_CEILING_WARNING = 0.8;

/** What a run does (or, dry, would do); ids only, never a key value. */
export type ReconcileAction = ReconcileActionInShard & { shard: string };

type ReconcileActionInShard =
  | {
      kind: 'delete-orphan';
      keyId: string;
      customerId?: string | undefined;
      reason: 'no-record' | 'orphan-record';
      /** The registration the key was made for (its tag): it may still record the key. */
      registrationId?: string | undefined;
    }
  | { kind: 'repair-plan'; keyId: string; customerId: string; fromPlans: string[]; toPlan: string }
  | { kind: 'mark-missing'; keyId: string; customerId: string }
  | { kind: 'close-orphan-record'; keyId: string; customerId: string };

type ActionKind = ReconcileAction['kind'];
type ActionCounts = Record<ActionKind, number>;

/** One shard's inventory: every key of its account and Region against the ceiling. */
export interface ShardInventory {
  shard: string;
  accountKeys: number;
  keyCeiling: number;
  ceilingUsedPercent: number;
  nearCeiling: boolean;
  managedKeys: number;
  /** Not surveyed this run: its keys could not be listed (counted as a failure). */
  unavailable?: boolean | undefined;
}

export interface ReconcileReport {
  dryRun: boolean;
  at: string;
  /** Per shard; the totals below add them up. */
  shards: ShardInventory[];
  /** Every key of the shards' accounts and Regions, managed or not: they all count against the ceilings. */
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
  /** Repairs left for the next run because another operation held the customer. */
  busy: number;
  /** Found out of place, then found in place (or still wanted) on the fresh re-check under the lease. */
  rechecked: number;
  failures: number;
  actions: ReconcileAction[];
}

const LIVE_STATES: ReadonlySet<string> = new Set(['ACTIVE', 'RETIRING']);
const noActions = (): ActionCounts => ({ 'delete-orphan': 0, 'repair-plan': 0, 'mark-missing': 0, 'close-orphan-record': 0 });

/**
 * Compares the managed keys in API Gateway with the table and repairs what drifted (DESIGN §1
 * Reconciliation): a managed key with no live record is an orphan and is deleted; a live key in no
 * plan, the wrong plan or two plans is put into the plan of its customer's tier; a record whose key
 * is gone is marked MISSING. Every read is a listing or a Query, never a scan. With `dryRun` it
 * only reports.
 *
 * The listing is only a suspicion: every repair and delete takes the customer's lease and looks
 * again (the customer's list, the key's registration, the key itself) before it acts, so a
 * registration or rotation recording the key meanwhile, or still able to, keeps it. Only keys of
 * this stage are seen: tagged with it (or untagged, from before the tag) and named exactly as
 * keyplan names them under this prefix.
 */
export async function reconcileKeys(
  options: { now: Date; dryRun: boolean },
  deps: ReconcileDeps,
): Promise<ReconcileReport> {
  const { now, dryRun } = options;
  const { settings } = deps;
  const report: ReconcileReport = {
    dryRun,
    at: now.toISOString(),
    shards: [],
    accountKeys: 0,
    keyCeiling: 0,
    ceilingUsedPercent: 0,
    nearCeiling: false,
    managedKeys: 0,
    trackedRecords: 0,
    skippedTooYoung: 0,
    found: noActions(),
    done: noActions(),
    busy: 0,
    rechecked: 0,
    failures: 0,
    actions: [],
  };
  // Records first, once: each shard judges the records of its own keys.
  const tracked = new Map<string, KeyRecord>();
  for await (const page of deps.records.trackedKeyPages()) for (const record of page) tracked.set(record.keyId, record);
  const tiers = await deps.records.tiersOf([...new Set([...tracked.values()].map((record) => record.customerId))]);
  report.trackedRecords = tracked.size;
  for (const shard of settings.shards) {
    const inShard = new Map([...tracked].filter(([, record]) => shardOf(settings.shards, record.shard).id === shard.id));
    // A shard that cannot be surveyed (its role refused, its Region down) is left for the next
    // run; the others are reconciled. Only complete surveys plan actions.
    const planned = report.actions.length;
    try {
      const inventory = await surveyShard(shard, inShard, tiers, now, report, deps);
      report.shards.push(inventory);
      // A dry run changes nothing, not even the count placement reads.
      if (!dryRun) await deps.records.recordInventory?.(shard.id, inventory.accountKeys, now);
    } catch (error) {
      for (const action of report.actions.splice(planned)) report.found[action.kind]--;
      report.failures++;
      report.shards.push({ ...unsurveyed(shard), unavailable: true });
      logger.error('reconcile: a shard could not be surveyed; the next run tries again', { shard: shard.id, error });
    }
  }
  report.accountKeys = sum(report.shards.map((shard) => shard.accountKeys));
  report.keyCeiling = sum(report.shards.map((shard) => shard.keyCeiling));
  report.managedKeys = sum(report.shards.map((shard) => shard.managedKeys));
  report.nearCeiling = report.shards.some((shard) => shard.nearCeiling);
  report.ceilingUsedPercent = Math.max(0, ...report.shards.map((shard) => shard.ceilingUsedPercent));

  if (!dryRun) {
    for (const action of report.actions) {
      try {
        if (await repair(action, tracked, now, deps)) report.done[action.kind]++;
        else report.rechecked++;
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
  for (const shard of report.shards.filter((inventory) => inventory.nearCeiling)) {
    logger.warn('reconcile: a shard is near its API key ceiling', { ...shard });
  }
  logger.info('reconcile run finished', summary);
  return report;
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

const unsurveyed = (shard: Shard): ShardInventory => ({
  shard: shard.id,
  accountKeys: 0,
  keyCeiling: shard.keyCeiling,
  ceilingUsedPercent: 0,
  nearCeiling: false,
  managedKeys: 0,
});

/**
 * One shard's part of a run: lists its keys and plans, and plans the actions its keys and its
 * records call for (into `report`). Keys first, then plans, then records: a key made after the
 * listing is simply not judged, and its record, if already written, is recognised by the
 * existence check below.
 */
async function surveyShard(
  shard: Shard,
  tracked: ReadonlyMap<string, KeyRecord>,
  tiers: ReadonlyMap<string, string>,
  now: Date,
  report: ReconcileReport,
  deps: ReconcileDeps,
): Promise<ShardInventory> {
  const { settings } = deps;
  const inventory = deps.inventory.in(shard.id);
  const youngerThan = now.getTime() - settings.minKeyAgeMinutes * 60_000;
  const isOwnKey = ownKeyFilter(settings.keyNamePrefix, settings.stage);
  let accountKeys = 0;
  const managed = new Map<string, ListedKey>();
  for await (const page of inventory.listKeyPages()) {
    accountKeys += page.length;
    for (const key of page) if (isOwnKey(key)) managed.set(key.id, key);
  }
  const plansOfKey = new Map<string, string[]>();
  for (const planId of new Set(Object.values(shard.plans))) {
    for (const keyId of await inventory.keysInPlan(planId)) plansOfKey.set(keyId, [...(plansOfKey.get(keyId) ?? []), planId]);
  }
  const plan = (action: ReconcileActionInShard) => {
    report.actions.push({ ...action, shard: shard.id });
    report.found[action.kind]++;
  };
  const expectedPlanOf = (record: KeyRecord) => planIn(shard, tiers.get(record.customerId) ?? record.tier);

  for (const key of managed.values()) {
    const record = tracked.get(key.id);
    if (record && LIVE_STATES.has(record.state)) {
      const expected = expectedPlanOf(record);
      const current = plansOfKey.get(key.id) ?? [];
      if (!expected) {
        logger.warn('reconcile: the customer tier has no usage plan in the shard; key left as it is', {
          shard: shard.id,
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
        registrationId: record?.registrationId ?? key.tags['keyplan:registration'],
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

  const keyCeiling = shard.keyCeiling;
  return {
    shard: shard.id,
    accountKeys,
    keyCeiling,
    ceilingUsedPercent: Math.round((accountKeys / keyCeiling) * 1000) / 10,
    nearCeiling: accountKeys >= keyCeiling * KEY_CEILING_WARNING,
    managedKeys: managed.size,
  };
}

function publishReconcileMetrics(report: ReconcileReport): void {
  // A level, not an event: each shard's alarm takes its maximum against its share of the ceiling,
  // and the stage's alarm the largest shard's (the one that fills first).
  for (const shard of report.shards.filter((inventory) => !inventory.unavailable)) {
    countShardMetric('AccountKeyCount', shard.shard, shard.accountKeys);
  }
  countMetric('OrphansDeleted', report.done['delete-orphan']);
  countMetric('KeysRepaired', report.done['repair-plan']);
  countMetric('RecordsMissing', report.done['mark-missing']);
  countMetric('ReconcileFailures', report.failures);
}

/**
 * Tagged and named by keyplan under this stage's prefix; keys of other stages and other tools in
 * the account are never touched. A prefix that starts another stage's (`keyplan-dev` and
 * `keyplan-dev-alice`) cannot match: the name must be the prefix and a hash, nothing else.
 */
export function ownKeyFilter(prefix: string, stage: string): (key: ListedKey) => boolean {
  const name = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{32}(-g[0-9]+)?$`);
  return (key) =>
    key.tags['keyplan:managed'] === 'true' &&
    (key.tags['keyplan:stage'] === undefined || key.tags['keyplan:stage'] === stage) &&
    name.test(key.name);
}

/** Carries out one action; false when the re-check under the lease found nothing to do. */
async function repair(
  action: ReconcileAction,
  tracked: ReadonlyMap<string, KeyRecord>,
  now: Date,
  deps: ReconcileDeps,
): Promise<boolean> {
  const record = tracked.get(action.keyId);
  if (action.kind === 'close-orphan-record') {
    // An ORPHANED item is in no customer's list: only its own state is judged.
    if (record) await deps.records.closeRecord(record, 'DELETED', now);
    return record !== undefined;
  }
  const mustFinish = action.kind === 'repair-plan';
  let taken;
  try {
    if (!action.customerId) throw new NotFoundError(`key ${action.keyId} names no customer`);
    taken = await acquireCustomer(
      action.customerId,
      { intent: { operation: 'reconcile', keyId: action.keyId }, mustFinish },
      deps,
    );
  } catch (error) {
    if (!(error instanceof NotFoundError) || action.kind !== 'delete-orphan') throw error;
    // No customer record: nothing can record the key but its registration, if it is unfinished.
    if (await mayStillBeRecorded(action, deps)) return false;
    await deps.inventory.in(action.shard).deleteKey(action.keyId);
    if (record) await deps.records.closeRecord(record, 'DELETED', now);
    logger.info('reconcile: orphan key deleted', { ...action });
    return true;
  }
  if (taken.kind === 'refused') return false;
  const { lease } = taken;
  return lease.run(async () => {
    switch (action.kind) {
      case 'delete-orphan':
        return deleteOrphan(lease, action, record, now, deps);
      case 'mark-missing':
        return markMissing(lease, action, now, deps);
      case 'repair-plan':
        return repairPlan(lease, action, record, now, deps);
    }
  }, mustFinish ? 'abandon' : 'release');
}

async function mayStillBeRecorded(
  action: Extract<ReconcileAction, { kind: 'delete-orphan' }>,
  deps: ReconcileDeps,
): Promise<boolean> {
  if (!action.registrationId) return false;
  const registration = await deps.registrations.getRegistration(action.registrationId);
  return registration?.state === 'QUEUED' || registration?.state === 'PENDING';
}

/**
 * Deletes a key no record tracks, after a fresh look under the lease: not in the customer's list
 * (a registration or rotation may have recorded it since the listing), and not the key of a
 * registration that is still unfinished (its next attempt finds the key by name and records it).
 * A rotation's successor needs no look of its own: a rotation that may still record it holds, or
 * left behind, a must-finish lease, which this lease could not have been taken over.
 */
async function deleteOrphan(
  lease: HeldLease,
  action: Extract<ReconcileAction, { kind: 'delete-orphan' }>,
  record: KeyRecord | undefined,
  now: Date,
  deps: ReconcileDeps,
): Promise<boolean> {
  if (lease.customer.keys[action.keyId] !== undefined || lease.customer.emailedKeyId === action.keyId) return false;
  if (await mayStillBeRecorded(action, deps)) return false;
  await lease.ensure();
  await deps.inventory.in(action.shard).deleteKey(action.keyId);
  await lease.commit(
    {
      items: record ? [{ kind: 'update', keyId: action.keyId, set: { state: 'DELETED' }, due: null }] : [],
      events: [event('OrphanKeyDeleted', { keyId: action.keyId, shard: action.shard, reason: action.reason, registrationId: action.registrationId })],
    },
    now,
  );
  logger.info('reconcile: orphan key deleted', { ...action });
  return true;
}

async function markMissing(
  lease: HeldLease,
  action: Extract<ReconcileAction, { kind: 'mark-missing' }>,
  now: Date,
  deps: ReconcileDeps,
): Promise<boolean> {
  if (!isLive(lease.customer.keys[action.keyId]) || (await deps.inventory.in(action.shard).keyExists(action.keyId))) return false;
  await lease.commit(
    {
      keys: { [action.keyId]: null },
      items: [{ kind: 'update', keyId: action.keyId, set: { state: 'MISSING' }, due: null }],
      events: [event('KeyMissing', { keyId: action.keyId, shard: action.shard })],
    },
    now,
  );
  logger.warn('reconcile: a recorded key no longer exists in API Gateway', { ...action });
  return true;
}

/**
 * Moves the key into the plan of its customer's tier as the lease reads it (a tier change that
 * finished since the listing wins), out of every other plan. Must-finish: a run that dies half way
 * leaves the rest to the sweep, which does the same.
 */
async function repairPlan(
  lease: HeldLease,
  action: Extract<ReconcileAction, { kind: 'repair-plan' }>,
  record: KeyRecord | undefined,
  now: Date,
  deps: ReconcileDeps,
): Promise<boolean> {
  const state = lease.customer.keys[action.keyId];
  if (!record || !isLive(state)) return false;
  let target: string;
  try {
    const plans = await convergeKeyPlans(lease, [action.keyId], { keys: deps.inventory, settings: deps.settings });
    target = plans.get(action.keyId) ?? action.toPlan;
  } catch (error) {
    // The customer keeps a working key until the next run: back into the plan it was in, if
    // that works (then nothing is left half done); else the sweep finishes the move.
    const [previous] = action.fromPlans;
    if (previous && !(error instanceof LeaseLostError)) {
      const restored = await deps.inventory.in(action.shard).addKeyToPlan(previous, action.keyId).then(
        () => true,
        (restoreError: unknown) => {
          logger.error('reconcile: key could not be put back into its previous plan', { ...action, error: restoreError });
          return false;
        },
      );
      if (restored) await lease.release();
    }
    throw error;
  }
  await lease.commit(
    {
      items: [
        {
          kind: 'update',
          keyId: action.keyId,
          set: { usagePlanId: target, tier: lease.customer.tier },
          // A repair mark of an older version moved the key out of its job's partition: back in.
          due: record.needsRepair
            ? state === 'RETIRING' && record.retireAt
              ? { type: DUE.retire, at: record.retireAt }
              : { type: DUE.rotate, at: record.rotateAt ?? now.toISOString() }
            : undefined,
        },
      ],
      events: [
        event('KeyRepaired', { keyId: action.keyId, usagePlanId: target, fromPlans: action.fromPlans, tier: lease.customer.tier, shard: action.shard, cause: 'reconcile' }),
      ],
    },
    now,
  );
  logger.info('reconcile: key put into the plan of its tier', { ...action, toPlan: target });
  return true;
}
