import type { CustomerKey } from '../core/model';
import type { ShardState } from '../core/shards';

/** A shard as the table knows it: its counts and the state an operator set. */
export interface ShardRecord {
  shardId: string;
  /** Keys placed there by keyplan (registrations and rotations; deletions take them off). */
  placedKeys: number;
  /** Every key of the shard's account and Region at the reconciler's last run, and when. */
  inventoryKeys?: number | undefined;
  inventoryAt?: string | undefined;
  /** Set by `shards drain`; none: as the shard list says. */
  state?: ShardState | undefined;
}

/** The shard items of the table. */
export interface ShardRegistry {
  /** One record per id; a shard nobody placed on yet has zero counts. */
  describe(shardIds: readonly string[]): Promise<ShardRecord[]>;
  setState(shardId: string, state: ShardState, now: Date): Promise<void>;
  /**
   * ACTIVE keys held in the shard, at most `limit` (the rotation partition of the due index, which
   * holds every ACTIVE key). `home`: keys that name no shard are the home shard's.
   */
  activeKeysIn(shardId: string, options: { home: boolean; limit: number }): Promise<CustomerKey[]>;
}
