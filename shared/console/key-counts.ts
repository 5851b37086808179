import { DAY_MS, DUE, type DueType, type KeyState } from '../core/model';
import type { DueEntry, DueIndex } from './ports';

/** The days the due chart covers, today first. */
export const DUE_DAYS = 30;

/** The states of keys that still exist in API Gateway: each waits in a partition of the due index. */
export type CountedKeyState = Extract<KeyState, 'ACTIVE' | 'RETIRING' | 'DISABLED' | 'ORPHANED'>;

/** Where each counted state waits: DELETED and MISSING keys left the index (and API Gateway). */
const STATE_OF_PARTITION: readonly (readonly [DueType, CountedKeyState])[] = [
  [DUE.rotate, 'ACTIVE'],
  [DUE.remind, 'RETIRING'],
  [DUE.retire, 'RETIRING'],
  [DUE.delete, 'DISABLED'],
  [DUE.cleanup, 'ORPHANED'],
];

export interface DueDay {
  /** YYYY-MM-DD, UTC. */
  day: string;
  /** ACTIVE keys whose rotateAt falls that day (today: also every overdue one). */
  rotations: number;
  /** RETIRING keys whose retireAt (the day they stop working) falls that day (today: also overdue). */
  retirements: number;
}

export interface KeyCounts {
  byState: Record<CountedKeyState, number>;
  /** Key items per shard id. */
  perShard: Record<string, number>;
  due: DueDay[];
  /** Of today's: rotations and retirements whose time had passed before today began. */
  overdue: { rotations: number; retirements: number };
  /** When the pass was made. */
  asOf: string;
}

/**
 * Every key that still exists, counted from the sparse due index (never a scan, never an API
 * Gateway listing): one Query per key partition, side by side, projected to three attributes.
 * Gives the keys by state, each shard's count (a key naming no shard is `home`'s) and the
 * rotations and retirements due per UTC day for DUE_DAYS days from `now`'s day.
 *
 * @throws TransientAwsError when DynamoDB keeps throttling or failing
 */
export async function countKeys(now: Date, index: DueIndex, home: string): Promise<KeyCounts> {
  const byState: Record<CountedKeyState, number> = { ACTIVE: 0, RETIRING: 0, DISABLED: 0, ORPHANED: 0 };
  const perShard: Record<string, number> = {};
  const buckets = new DueBuckets(now);
  await Promise.all(
    STATE_OF_PARTITION.map(async ([dueType, state]) => {
      for await (const entry of index.entries(dueType)) {
        byState[state]++;
        const shard = entry.shard ?? home;
        perShard[shard] = (perShard[shard] ?? 0) + 1;
        if (dueType === DUE.rotate) buckets.add('rotations', entry.dueAt);
        else if (state === 'RETIRING') buckets.add('retirements', retirementDay(entry));
      }
    }),
  );
  return { byState, perShard, due: buckets.days, overdue: buckets.overdue, asOf: now.toISOString() };
}

/** A REMIND item waits for its reminder; the key still stops at its retireAt. */
const retirementDay = (entry: DueEntry) => entry.retireAt ?? entry.dueAt;

/** Counts per UTC day over DUE_DAYS days from `now`'s day; anything earlier lands on today. */
export class DueBuckets {
  readonly days: DueDay[];
  readonly overdue = { rotations: 0, retirements: 0 };
  readonly #start: number;

  constructor(now: Date) {
    this.#start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    this.days = Array.from({ length: DUE_DAYS }, (_, i) => ({
      day: new Date(this.#start + i * DAY_MS).toISOString().slice(0, 10),
      rotations: 0,
      retirements: 0,
    }));
  }

  add(kind: 'rotations' | 'retirements', at: string): void {
    const time = Date.parse(at);
    if (Number.isNaN(time)) return;
    const index = Math.floor((time - this.#start) / DAY_MS);
    if (index >= DUE_DAYS) return;
    if (index < 0) this.overdue[kind]++;
    this.days[Math.max(0, index)]![kind]++;
  }
}
