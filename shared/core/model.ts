/**
 * The customer's keys as every domain folder sees them: key states, the key item, and where a key
 * waits for its next job. Adapters store these; use cases speak them.
 */

export const DAY_MS = 86_400_000;

export type KeyState = 'ACTIVE' | 'RETIRING' | 'DISABLED' | 'DELETED' | 'ORPHANED' | 'MISSING';

export interface CustomerKey {
  customerId: string;
  keyId: string;
  state: KeyState;
  usagePlanId: string;
  tier: string;
  /** The shard holding the key (core/shards.ts); none: the home shard, as before shards. */
  shard?: string | undefined;
  fingerprint?: string | undefined;
  registrationId: string;
  createdAt: string;
  rotateAt?: string | undefined;
  retireAt?: string | undefined;
  /** 1 for the registration's key, +1 with each rotation; part of the successor's name. */
  generation: number;
  successorKeyId?: string | undefined;
}

/**
 * Partitions of the sparse due index: an item is in it only while a job has work on it. A key
 * moves ROTATE -> (REMIND ->) RETIRE -> DELETE; an orphan waits in CLEANUP for the reconciler. An
 * unfinished registration waits in RESUME; a customer whose operation died holding its lease
 * waits in REPAIR, both for the sweep.
 */
export const DUE = {
  rotate: 'ROTATE',
  remind: 'REMIND',
  retire: 'RETIRE',
  delete: 'DELETE',
  cleanup: 'CLEANUP',
  resume: 'RESUME',
  repair: 'REPAIR',
} as const;
export type DueType = (typeof DUE)[keyof typeof DUE];

/** The partitions that hold key items. */
export const KEY_DUE_TYPES: readonly DueType[] = [DUE.rotate, DUE.remind, DUE.retire, DUE.delete, DUE.cleanup];

/** Keys that still unlock the API: a RETIRING key keeps working through its grace period. */
export const isLive = (state: string | undefined) => state === 'ACTIVE' || state === 'RETIRING';
