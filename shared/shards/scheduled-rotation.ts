import { type DueBatch, type DueKey, dueKey, findDueRotations, rotateDueKeys, type RotationRunReport } from '../rotation/rotation-jobs';
import { continueDrains, type DrainDeps, type DrainProgress } from './drain-shard';

export type ScheduledRotationReport = RotationRunReport & {
  /** One step per shard being drained, when there is one (none: the key is absent). */
  drains?: DrainProgress[];
};

/**
 * One run of the rotation schedule (functions/rotate-keys, and `keyplan jobs run rotate-keys`):
 * at most `batchSize` keys whose rotateAt has passed by `now` (the schedule's time), then, with
 * what is left of the batch, a step of every shard an operator marked draining, so a drain that
 * was stopped goes on by itself.
 */
export async function runScheduledRotation(now: Date, batchSize: number, deps: DrainDeps): Promise<ScheduledRotationReport> {
  const report = await rotateDueKeys(now, batchSize, deps);
  const drains = await continueDrains(now, batchSize - report.rotated - report.skipped, deps);
  return drains.length === 0 ? report : { ...report, drains };
}

export interface ScheduledRotationPreview {
  batchSize: number;
  /** The keys the run would rotate (one batch), and how many are due in all. */
  due: DueBatch;
  /** For each shard being drained: the ACTIVE keys its step would move, at most what the batch leaves. */
  drains: { shard: string; keys: DueKey[] }[];
}

/**
 * What runScheduledRotation(at, batchSize) would do, changing nothing: the same reads of the due
 * index and of the draining shards, assuming every due key is rotated (a busy or failed one
 * leaves more of the batch to the drains). A drain's keys go to whichever shards have room then.
 */
export async function previewScheduledRotation(at: Date, batchSize: number, deps: DrainDeps): Promise<ScheduledRotationPreview> {
  const due = await findDueRotations(at, batchSize, deps);
  const left = batchSize - due.keys.length;
  const { shards } = deps.settings;
  const drains: ScheduledRotationPreview['drains'] = [];
  if (shards.length > 1 && left > 0) {
    const records = await deps.registry.describe(shards.map((shard) => shard.id));
    for (const { shardId } of records.filter((record) => record.state === 'draining')) {
      const keys = await deps.registry.activeKeysIn(shardId, { home: shardId === shards[0]!.id, limit: left });
      drains.push({ shard: shardId, keys: keys.map((key) => dueKey(key, deps.settings)) });
    }
  }
  return { batchSize, due, drains };
}
