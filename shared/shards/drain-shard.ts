import { placementOrder, type Shard, shardOf } from '../core/shards';
import type { CustomerKey } from '../core/model';
import { CustomerBusyError, NoShardCapacityError, ValidationError } from '../errors';
import { logger } from '../logger';
import { type RotationDeps, rotateKey } from '../rotation/rotate-key';
import type { ShardRegistry } from './ports';
import { reportShards } from './shard-report';

export interface DrainDeps extends RotationDeps {
  registry: ShardRegistry;
}

export interface DrainProgress {
  shard: string;
  /** Keys rotated into another shard by this step (their customers moved with them). */
  moved: number;
  /** Keys no longer ACTIVE, or of a customer that is not, by the time their turn came. */
  skipped: number;
  /** Another operation held the customer: the key stays for the next step. */
  busy: number;
  failed: number;
  /** Where the moved keys went, by shard id. */
  to: Record<string, number>;
  /** False once a step finds no ACTIVE key left in the shard. */
  moreLeft: boolean;
}

/**
 * One step of emptying a shard (DESIGN §8): marks it draining (no new customer is placed there),
 * then rotates up to `limit` of its ACTIVE keys into other shards with headroom. Each successor is
 * made and emailed (with its shard's base URL) in the target shard, the customer moves there, and
 * the old key retires in its own shard after the grace period like any rotated key. Resumable: a
 * moved key is no longer ACTIVE in the shard, so the next step simply takes the next ones; the
 * pace is the rotation's, within each shard's management budget.
 *
 * @throws ValidationError for an unknown shard, or when no other shard accepts customers
 */
export async function drainShard(
  shardId: string,
  options: { now: Date; limit: number; graceDays?: number | undefined; to?: string | undefined },
  deps: DrainDeps,
): Promise<DrainProgress> {
  const { shards } = deps.settings;
  const source = known(shards, shardId, 'shard');
  const graceDays = options.graceDays ?? deps.settings.graceDays;
  await deps.registry.setState(source.id, 'draining', options.now);

  const room = new Map<string, number>();
  for (const row of await reportShards(shards, deps.registry)) {
    const shard = shardOf(shards, row.shard);
    if (shard.id === source.id || row.state !== 'accepting') continue;
    if (options.to !== undefined && shard.id !== options.to) continue;
    room.set(shard.id, shard.highWaterKeys === undefined ? Number.POSITIVE_INFINITY : shard.highWaterKeys - row.keys);
  }
  if (options.to !== undefined) known(shards, options.to, 'to');
  if (room.size === 0) throw new ValidationError(options.to ? 'to' : 'shard', 'no other shard accepts customers');

  const progress: DrainProgress = { shard: source.id, moved: 0, skipped: 0, busy: 0, failed: 0, to: {}, moreLeft: false };
  const keys = await deps.registry.activeKeysIn(source.id, { home: source.id === shards[0]!.id, limit: options.limit });
  keys: for (const key of keys) {
    for (;;) {
      const open = shards.filter((shard) => (room.get(shard.id) ?? 0) > 0);
      const [target] = placementOrder(open, key.customerId);
      if (!target) {
        logger.warn('drain: every other shard is at its high-water mark', { shard: source.id });
        progress.moreLeft = true;
        break keys;
      }
      try {
        const result = await rotateKey(key, { now: options.now, graceDays, toShard: target.id }, deps);
        if (result.outcome === 'rotated') {
          progress.moved++;
          progress.to[target.id] = (progress.to[target.id] ?? 0) + 1;
          room.set(target.id, (room.get(target.id) ?? 0) - 1);
        } else progress.skipped++;
      } catch (error) {
        // The room read above was taken meanwhile (another drain step, a registration, a
        // reconcile's inventory): the move reserved nothing and made nothing, so the same key
        // tries the next shard with room.
        if (error instanceof NoShardCapacityError) {
          room.set(target.id, 0);
          continue;
        }
        countFailure(error, key, source.id, progress);
      }
      break;
    }
  }
  progress.moreLeft ||= keys.length >= options.limit || progress.busy + progress.failed > 0;
  logger.info('drain step finished', { ...progress });
  return progress;
}

function countFailure(error: unknown, key: CustomerKey, shardId: string, progress: DrainProgress): void {
  if (error instanceof CustomerBusyError) {
    progress.busy++;
    return;
  }
  progress.failed++;
  logger.error('drain: moving a key failed; the next step tries again', { shard: shardId, customerId: key.customerId, keyId: key.keyId, error });
}

function known(shards: readonly Shard[], shardId: string, field: string): Shard {
  const shard = shards.find((candidate) => candidate.id === shardId);
  if (!shard) throw new ValidationError(field, `${field} must be one of the shards: ${shards.map((s) => s.id).join(', ')}`);
  return shard;
}

/**
 * The scheduled part of a drain: one step (at most `limit` keys) for each shard an operator marked
 * draining, so a drain started with `keyplan shards drain` goes on by itself, within the rotation
 * run's batch, should the operator's run stop. Nothing to do (no read) with a single shard.
 */
export async function continueDrains(now: Date, limit: number, deps: DrainDeps): Promise<DrainProgress[]> {
  const { shards } = deps.settings;
  if (shards.length < 2 || limit <= 0) return [];
  const draining = (await deps.registry.describe(shards.map((shard) => shard.id)))
    .filter((record) => record.state === 'draining')
    .map((record) => record.shardId);
  const steps: DrainProgress[] = [];
  for (const shardId of draining) {
    try {
      steps.push(await drainShard(shardId, { now, limit }, deps));
    } catch (error) {
      // No other shard with room: the drain waits for one; the rotation run itself went fine.
      logger.warn('drain step skipped', { shard: shardId, error });
    }
  }
  return steps;
}
