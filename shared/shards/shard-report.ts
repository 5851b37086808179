import type { Shard, ShardState } from '../core/shards';
import type { ShardRegistry } from './ports';

/** One row of `keyplan shards`: where a shard stands against its ceiling. */
export interface ShardReport {
  shard: string;
  baseUrl?: string | undefined;
  /** The larger of keyplan's own count and the reconciler's last inventory of the account. */
  keys: number;
  placedKeys: number;
  inventoryKeys?: number | undefined;
  inventoryAt?: string | undefined;
  keyCeiling: number;
  highWaterKeys?: number | undefined;
  usedPercent: number;
  /** accepting: takes new customers; full: at its high-water mark; draining: being emptied. */
  state: ShardState | 'full';
}

/** Every shard of the list with its counts, in the list's order. */
export async function reportShards(shards: readonly Shard[], registry: Pick<ShardRegistry, 'describe'>): Promise<ShardReport[]> {
  const records = new Map((await registry.describe(shards.map((shard) => shard.id))).map((record) => [record.shardId, record]));
  return shards.map((shard) => {
    const record = records.get(shard.id);
    const placedKeys = record?.placedKeys ?? 0;
    const keys = Math.max(placedKeys, record?.inventoryKeys ?? 0);
    const draining = shard.state === 'draining' || record?.state === 'draining';
    const full = shard.highWaterKeys !== undefined && keys >= shard.highWaterKeys;
    return {
      shard: shard.id,
      baseUrl: shard.baseUrl,
      keys,
      placedKeys,
      inventoryKeys: record?.inventoryKeys,
      inventoryAt: record?.inventoryAt,
      keyCeiling: shard.keyCeiling,
      highWaterKeys: shard.highWaterKeys,
      usedPercent: Math.round((keys / shard.keyCeiling) * 1000) / 10,
      state: draining ? 'draining' : full ? 'full' : 'accepting',
    };
  });
}
