/**
 * Figure 7 (issue 15, shards): the same bulk load worked over 1, 2 and 3 shards, each shard an
 * account and Region with its own management budget. Pure functions over what each point measured
 * (bench/scale-out.ts), so test/unit/bench-scale-out.test.ts can pin them down.
 */
import { MANAGEMENT_CALLS_PER_REGISTRATION, itemsPerSecond } from './budget-figures';
import { figure, type Figure, round } from './stats';

/** One shard's part of a point. */
export interface ScaleOutShard {
  id: string;
  /** The budget it draws on, `account/Region` (bench/shard-budget-proxy.ts). */
  budget: string;
  /** Registrations placed on it. */
  placed: number;
  /** Of those, ACTIVE at the end. */
  active: number;
  /** keyplan's keys of the point found in its API Gateway. */
  keys: number;
  /** Management calls its budget admitted, and those it answered 429. */
  admitted: number;
  throttled: number;
  /** From the first message to its last registration acknowledged; null when it had none. */
  seconds: number | null;
}

/** What one point (a number of shards) measured. */
export interface ScaleOutPoint {
  shards: number;
  registrations: number;
  /** From the first message to the last acknowledged (the timeout if it struck first). */
  seconds: number;
  /** Registrations ACTIVE at the end. */
  active: number;
  /** The worker's calls per second in each shard, all its containers together (its share of that shard's budget). */
  workerCallsPerShard: number;
  /** The account's budget per shard (10 calls/s). */
  accountCallsPerShard: number;
  /** Management calls answered 429, every shard's budget together. */
  throttled: number;
  /** A customer's keys beyond its first, over every shard's account and Region. */
  duplicates: number;
  /** Keys in a shard's API Gateway that no registration records there. */
  orphans: number;
  perShard: ScaleOutShard[];
  details?: Record<string, unknown>;
}

/** Registrations completed per second of wall time. */
export function keysPerSecond(point: Pick<ScaleOutPoint, 'active' | 'seconds'>): number {
  if (!(point.seconds > 0)) throw new RangeError('a point needs a duration above 0');
  return point.active / point.seconds;
}

/** What `shards` shards' budgets allow the worker, at its share in each: shards × share / 2. */
export function shardsLimit(shards: number, callsPerShard: number): number {
  return shards * itemsPerSecond(callsPerShard, MANAGEMENT_CALLS_PER_REGISTRATION);
}

/** The target of a point beyond the first: at least 90% of `shards` times what one shard allows. */
export const SCALE_OUT_EFFICIENCY = 0.9;

/**
 * The figure's rows: the 1-shard point against what one shard's budget allows the worker (the
 * baseline's own check, as figure 4); every larger point against the 1-shard point measured in
 * the same run (the ratio is the scale-out), judged on its value: at least 0.9 × shards × what one
 * shard allows; the largest point against the accounts' whole budgets, reported (the static
 * split's cost) when the worker runs at a share; and, over every point, the 429s, duplicate keys
 * and orphan keys.
 * @throws RangeError without a 1-shard point
 */
export function scaleOutFigures(points: readonly ScaleOutPoint[]): Figure[] {
  const sorted = [...points].sort((a, b) => a.shards - b.shards);
  const base = sorted[0];
  if (!base || base.shards !== 1) throw new RangeError('the scale-out figure needs a 1-shard point, its baseline');
  const baseline = round(keysPerSecond(base), 3);
  const rows: Figure[] = [];
  for (const point of sorted) {
    const value = round(keysPerSecond(point), 3);
    const limit = shardsLimit(point.shards, point.workerCallsPerShard);
    const details = { ...pointDetails(point), limitPerSecond: round(limit, 3) };
    if (point.shards === 1) {
      rows.push(
        figure({
          id: 'scale-out.1-shard',
          group: 7,
          label: "Scale-out: 1 shard vs its budget's limit",
          unit: 'keys/s',
          value,
          baseline: round(limit, 3),
          target: { of: 'ratio', op: '>=', limit: SCALE_OUT_EFFICIENCY, source: 'bench' },
          details,
        }),
      );
      continue;
    }
    rows.push(
      figure({
        id: `scale-out.${point.shards}-shards`,
        group: 7,
        label: `Scale-out: ${point.shards} shards vs 1 shard`,
        unit: 'keys/s',
        value,
        baseline,
        target: { of: 'value', op: '>=', limit: round(SCALE_OUT_EFFICIENCY * limit, 3), source: 'issue' },
        details,
      }),
    );
  }
  const largest = sorted[sorted.length - 1]!;
  if (largest.workerCallsPerShard < largest.accountCallsPerShard) {
    rows.push(
      figure({
        id: 'scale-out.account-limit',
        group: 7,
        label: `Scale-out: ${largest.shards} shards vs the accounts' limit`,
        unit: 'keys/s',
        value: round(keysPerSecond(largest), 3),
        baseline: round(shardsLimit(largest.shards, largest.accountCallsPerShard), 3),
        target: { of: 'reported', note: "the static split's cost" },
      }),
    );
  }
  const total = (count: (point: ScaleOutPoint) => number) => sorted.reduce((sum, point) => sum + count(point), 0);
  const perPoint = (count: (point: ScaleOutPoint) => number) => Object.fromEntries(sorted.map((point) => [`${point.shards}`, count(point)]));
  const zero = (id: string, label: string, count: (point: ScaleOutPoint) => number, source: 'issue' | 'bench') =>
    figure({
      id,
      group: 7,
      label,
      unit: 'count',
      value: total(count),
      baseline: null,
      target: { of: 'value', op: '=', limit: 0, source },
      details: { byShards: perPoint(count) },
    });
  rows.push(
    // keyplan paces itself within each shard's budget: a 429 means two shards' calls met in one.
    zero('scale-out.throttled', 'Scale-out: calls answered 429, every point', (point) => point.throttled, 'bench'),
    zero('scale-out.duplicates', 'Scale-out: duplicate keys, every point', (point) => point.duplicates, 'issue'),
    zero('scale-out.orphans', 'Scale-out: orphan keys, every point', (point) => point.orphans, 'issue'),
  );
  return rows;
}

/**
 * How a point's batches fell over its shards: a container's batch ends when its last record does,
 * and each shard's records are paced by that shard's bucket, so a batch lasts as long as its
 * busiest shard needs while the others' budgets wait. `shardsOfBatch` holds, per batch, the shard
 * of each record. `busiestShare` is the mean share of a batch on its busiest shard: 1 with one
 * shard, 1 / shards if every batch were split evenly.
 */
export function batchMix(shardsOfBatch: readonly (readonly string[])[]): { batches: number; meanRecords: number; busiestShare: number } {
  const batches = shardsOfBatch.filter((batch) => batch.length > 0);
  if (batches.length === 0) return { batches: 0, meanRecords: 0, busiestShare: 0 };
  let records = 0;
  let busiest = 0;
  for (const batch of batches) {
    const counts = new Map<string, number>();
    for (const shard of batch) counts.set(shard, (counts.get(shard) ?? 0) + 1);
    records += batch.length;
    busiest += Math.max(...counts.values()) / batch.length;
  }
  return { batches: batches.length, meanRecords: round(records / batches.length, 2), busiestShare: round(busiest / batches.length, 3) };
}

/**
 * What the point's placement allows: its registrations over the time its fullest shard needs with
 * that shard's budget used all along (the point ends with its fullest shard). With 1,000
 * registrations hashed over 3 shards the fullest holds 338-369 of them (runs of 2026-11-30), so
 * 13.5-14.8 keys/s at best against the 15 of an even split.
 */
export function placementLimit(point: Pick<ScaleOutPoint, 'active' | 'perShard' | 'workerCallsPerShard'>): number | null {
  const fullest = Math.max(0, ...point.perShard.map((shard) => shard.placed));
  if (fullest === 0) return null;
  return point.active / (fullest / itemsPerSecond(point.workerCallsPerShard, MANAGEMENT_CALLS_PER_REGISTRATION));
}

/**
 * A point's counts for the details: per shard, its registrations, keys, calls, its own pace and
 * `shareUsed`, the calls its budget admitted over what the worker's share of it allows in the
 * point's time (1: the shard's share was used all along); and `placementLimitPerSecond`.
 */
function pointDetails(point: ScaleOutPoint): Record<string, unknown> {
  const byPlacement = placementLimit(point);
  return {
    shards: point.shards,
    registrations: point.registrations,
    seconds: point.seconds,
    active: point.active,
    placementLimitPerSecond: byPlacement === null ? null : round(byPlacement, 3),
    throttled429: point.throttled,
    duplicates: point.duplicates,
    orphans: point.orphans,
    perShard: point.perShard.map((shard) => ({
      ...shard,
      keysPerSecond: shard.seconds ? round(shard.active / shard.seconds, 3) : null,
      shareUsed: round(shard.admitted / (point.workerCallsPerShard * point.seconds), 3),
    })),
    ...point.details,
  };
}
