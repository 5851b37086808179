import type { CustomerLedger } from '../core/customer-record';
import type { Shard } from '../core/shards';
import type { StalledRegistrations } from '../provisioning/ports';
import { findStalledRegistrations, type StalledRegistration } from '../provisioning/resume-registrations';
import type { ShardRegistry } from '../shards/ports';
import { reportShards, type ShardReport } from '../shards/shard-report';
import { findInterruptedOperations, type InterruptedOperation } from '../sweep/finish-interrupted';
import type { CountedKeyState, DueDay, KeyCounts } from './key-counts';
import type { QueueDepths, RecentFailures } from './ports';

/** Rows of the stalled, interrupted and failed lists; the totals are counted beyond them. */
export const OVERVIEW_LIST_LIMIT = 20;

export interface OverviewDeps {
  /**
   * The key pass (key-counts.ts countKeys): it reads every key item, so the wiring keeps it a
   * while (refreshing.ts) and the console drops it after each of its own actions.
   */
  keyCounts(): Promise<KeyCounts>;
  /** FAILED registrations: a scan, kept a while likewise. */
  recentFailures(): Promise<RecentFailures>;
  /** What the sweep would take (previewStalled below), kept a while likewise. */
  sweepPreview(): Promise<SweepPreview>;
  queues: QueueDepths;
  registry: Pick<ShardRegistry, 'describe'>;
  settings: { shards: readonly Shard[] };
}

export interface SweepPreview {
  stalled: StalledRegistration[];
  interrupted: InterruptedOperation[];
  asOf: string;
}

/**
 * What the resume sweep would take now, as its dry run shows it: the stalled registrations (the
 * RESUME partition whose time has passed by `now`) and the interrupted operations (REPAIR, by the
 * clock), at most OVERVIEW_LIST_LIMIT of each.
 */
export async function previewStalled(
  now: Date,
  deps: { stalled: Pick<StalledRegistrations, 'findStalled'>; ledger: Pick<CustomerLedger, 'findInterrupted'>; clock: () => Date },
): Promise<SweepPreview> {
  const [stalled, interrupted] = await Promise.all([
    findStalledRegistrations(now, OVERVIEW_LIST_LIMIT, deps),
    findInterruptedOperations(OVERVIEW_LIST_LIMIT, deps),
  ]);
  return { stalled, interrupted, asOf: now.toISOString() };
}

export interface ShardGauge extends ShardReport {
  /** Key items of the shard in the due index: every key keyplan knows to exist there. */
  tableKeys: number;
  /** What the gauge shows: the largest of the table's count, the placed count and the inventory. */
  used: number;
}

export interface Overview {
  at: string;
  /** When the keys were counted (the gauge, the states, the due chart). */
  keysAsOf: string;
  shards: ShardGauge[];
  keysByState: Record<CountedKeyState, number>;
  due: DueDay[];
  overdue: KeyCounts['overdue'];
  queues: { queue: number; dlq: number; queues: number };
  stalled: StalledRegistration[];
  interrupted: InterruptedOperation[];
  /** When the stalled registrations and interrupted operations were read. */
  stalledAsOf: string;
  failures: RecentFailures;
}

/**
 * The console's overview: keys against each shard's ceiling, keys by state, the rotations and
 * retirements due per day, the provisioning queues and their DLQs, what the sweep would take now
 * (stalled registrations, interrupted operations) and the failed registrations the table keeps.
 *
 * The gauge shows the largest of the table's count of the shard's keys, keyplan's placed count
 * and the reconciler's last inventory (shard items, as `keyplan shards` reports them). The reads
 * run side by side; the queues and the shard items are read for every page, the rest is kept.
 *
 * @throws TransientAwsError when AWS keeps throttling or failing
 */
export async function getOverview(now: Date, deps: OverviewDeps): Promise<Overview> {
  const [counts, shards, queues, sweep, failures] = await Promise.all([
    deps.keyCounts(),
    reportShards(deps.settings.shards, deps.registry),
    deps.queues.depths(),
    deps.sweepPreview(),
    deps.recentFailures(),
  ]);
  return {
    at: now.toISOString(),
    keysAsOf: counts.asOf,
    shards: shards.map((report) => {
      const tableKeys = counts.perShard[report.shard] ?? 0;
      return { ...report, tableKeys, used: Math.max(report.keys, tableKeys) };
    }),
    keysByState: counts.byState,
    due: counts.due,
    overdue: counts.overdue,
    queues,
    stalled: sweep.stalled,
    interrupted: sweep.interrupted,
    stalledAsOf: sweep.asOf,
    failures,
  };
}
