import { describe, expect, it, vi } from 'vitest';
import { countKeys, DUE_DAYS, DueBuckets } from '../../shared/console/key-counts';
import { getOverview, type OverviewDeps, previewStalled } from '../../shared/console/overview';
import type { DueEntry, DueIndex, RecentFailures } from '../../shared/console/ports';
import { kept } from '../../shared/console/refreshing';
import { DUE, type DueType } from '../../shared/core/model';
import type { Registration } from '../../shared/core/registration';
import type { Shard } from '../../shared/core/shards';
import type { ShardRecord } from '../../shared/shards/ports';

const NOW = new Date('2026-03-10T15:30:00.000Z');
const SHARDS: Shard[] = [
  { id: 'home', plans: { free: 'p1' }, keyCeiling: 10_000, state: 'accepting' },
  { id: 'west', plans: { free: 'p2' }, keyCeiling: 10_000, highWaterKeys: 8_000, state: 'accepting' },
];

const index = (partitions: Partial<Record<DueType, DueEntry[]>>): DueIndex => ({
  async *entries(dueType: DueType) {
    yield* partitions[dueType] ?? [];
  },
});

function deps(partitions: Partial<Record<DueType, DueEntry[]>>, overrides: Partial<OverviewDeps> = {}): OverviewDeps {
  return {
    keyCounts: () => countKeys(NOW, index(partitions), 'home'),
    recentFailures: async () => ({ failures: [], total: 0 }),
    queues: { depths: async () => ({ queue: 7, dlq: 2, queues: 2 }) },
    registry: { describe: async (ids) => ids.map((shardId): ShardRecord => ({ shardId, placedKeys: 0 })) },
    sweepPreview: async () => ({ stalled: [], interrupted: [], asOf: NOW.toISOString() }),
    settings: { shards: SHARDS },
    ...overrides,
  };
}

const at = (iso: string, extra: Partial<DueEntry> = {}): DueEntry => ({ dueAt: iso, ...extra });

describe('getOverview', () => {
  it('counts keys by state from the partitions of the due index', async () => {
    const overview = await getOverview(
      NOW,
      deps({
        [DUE.rotate]: [at('2026-04-01T00:00:00Z'), at('2026-06-01T00:00:00Z'), at('2026-06-02T00:00:00Z')],
        [DUE.remind]: [at('2026-03-11T00:00:00Z', { retireAt: '2026-03-13T00:00:00Z' })],
        [DUE.retire]: [at('2026-03-12T00:00:00Z')],
        [DUE.delete]: [at('2026-04-10T00:00:00Z'), at('2026-04-11T00:00:00Z')],
        [DUE.cleanup]: [at('2026-03-01T00:00:00Z')],
      }),
    );

    expect(overview.keysByState).toEqual({ ACTIVE: 3, RETIRING: 2, DISABLED: 2, ORPHANED: 1 });
  });

  it('buckets rotations and retirements per UTC day for 30 days from today, the overdue on today', async () => {
    const overview = await getOverview(
      NOW,
      deps({
        [DUE.rotate]: [
          at('2026-03-01T00:00:00Z'), // overdue
          at('2026-03-10T00:00:00Z'), // today, before now
          at('2026-03-10T23:59:59Z'), // today
          at('2026-03-11T00:00:00Z'), // tomorrow
          at('2026-04-08T23:59:59Z'), // the 30th day
          at('2026-04-09T00:00:00Z'), // beyond
        ],
        // A REMIND item is due at its reminder; the key stops at retireAt.
        [DUE.remind]: [at('2026-03-11T00:00:00Z', { retireAt: '2026-03-13T08:00:00Z' })],
        [DUE.retire]: [at('2026-03-09T00:00:00Z'), at('2026-03-12T00:00:00Z')],
      }),
    );

    const byDay = Object.fromEntries(overview.due.map((d) => [d.day, [d.rotations, d.retirements]]));
    expect(overview.keysAsOf).toBe(NOW.toISOString());
    expect(overview.due).toHaveLength(DUE_DAYS);
    expect(overview.due[0]!.day).toBe('2026-03-10');
    expect(overview.due.at(-1)!.day).toBe('2026-04-08');
    expect(byDay['2026-03-10']).toEqual([3, 1]);
    expect(byDay['2026-03-11']).toEqual([1, 0]);
    expect(byDay['2026-03-12']).toEqual([0, 1]);
    expect(byDay['2026-03-13']).toEqual([0, 1]);
    expect(byDay['2026-04-08']).toEqual([1, 0]);
    expect(overview.overdue).toEqual({ rotations: 1, retirements: 1 });
    expect(overview.due.reduce((sum, d) => sum + d.rotations, 0)).toBe(5);
  });

  it("gauges each shard by the largest of the table's count, the placed count and the inventory", async () => {
    const overview = await getOverview(
      NOW,
      deps(
        {
          [DUE.rotate]: [at('2026-05-01T00:00:00Z'), at('2026-05-01T00:00:00Z', { shard: 'home' }), at('2026-05-01T00:00:00Z', { shard: 'west' })],
          [DUE.delete]: [at('2026-05-01T00:00:00Z', { shard: 'west' })],
        },
        {
          registry: {
            describe: async () => [
              { shardId: 'home', placedKeys: 0, inventoryKeys: 1, inventoryAt: '2026-03-10T03:00:00Z' },
              { shardId: 'west', placedKeys: 9 },
            ],
          },
        },
      ),
    );

    expect(overview.shards.map((s) => [s.shard, s.tableKeys, s.used, s.keyCeiling])).toEqual([
      ['home', 2, 2, 10_000],
      ['west', 2, 9, 10_000],
    ]);
  });

  it('shows the queues, what the sweep would take now, and the kept failures', async () => {
    const stalled = { registrationId: 'r1', customerId: 'c1', state: 'PENDING', resumeAttempts: 10, updatedAt: '2026-03-09T00:00:00Z' } as Registration;
    const findStalled = vi.fn(async () => [stalled]);
    const failures: RecentFailures = { failures: [{ registrationId: 'r2', customerId: 'c2', tier: 'free', failureReason: 'association-rejected', updatedAt: '2026-03-09T00:00:00Z' }], total: 4 };

    const overview = await getOverview(
      NOW,
      deps(
        {},
        {
          sweepPreview: () =>
            previewStalled(NOW, {
              stalled: { findStalled },
              ledger: { findInterrupted: async () => [{ customerId: 'c3', intent: { operation: 'rotate', keyId: 'k3' } }] },
              clock: () => NOW,
            }),
          recentFailures: async () => failures,
        },
      ),
    );

    expect(findStalled).toHaveBeenCalledWith(NOW, 20);
    expect(overview.queues).toEqual({ queue: 7, dlq: 2, queues: 2 });
    expect(overview.stalled).toEqual([expect.objectContaining({ registrationId: 'r1', action: 'give-up' })]);
    expect(overview.interrupted).toEqual([{ customerId: 'c3', operation: 'rotate', keyId: 'k3' }]);
    expect(overview.failures).toEqual(failures);
  });
});

describe('DueBuckets', () => {
  it('ignores a time it cannot read', () => {
    const buckets = new DueBuckets(NOW);

    buckets.add('rotations', 'not a time');

    expect(buckets.days.every((d) => d.rotations === 0)).toBe(true);
  });
});

describe('kept', () => {
  /** A read whose answers are 1, 2, 3, ...; each waits until the test lets it finish. */
  function aRead() {
    let reads = 0;
    const pending: (() => void)[] = [];
    const read = vi.fn(async () => {
      const n = ++reads;
      await new Promise<void>((resolve) => pending.push(resolve));
      return n;
    });
    const finishAll = async () => {
      while (pending.length > 0) pending.shift()!();
      await new Promise((resolve) => setTimeout(resolve, 0));
    };
    return { read, finishAll };
  }

  it('waits for the first read only, then serves the kept answer and reads again behind it once old', async () => {
    let now = 0;
    const { read, finishAll } = aRead();
    const value = kept(read, 1_000, () => new Date(now));

    const first = value.get();
    await finishAll();
    now = 500;
    const fresh = await value.get();
    now = 1_500;
    const stale = await value.get();
    await finishAll();
    const refreshed = await value.get();

    expect([await first, fresh, stale, refreshed]).toEqual([1, 1, 1, 2]);
    expect(read).toHaveBeenCalledTimes(2);
  });

  it('after invalidate, waits for a read started after it, not for one already running', async () => {
    let now = 0;
    const { read, finishAll } = aRead();
    const value = kept(read, 1_000, () => new Date(now));
    value.prefetch();
    await finishAll();
    now = 2_000;
    await value.get(); // starts read 2 behind the kept answer

    value.invalidate();
    const after = value.get();
    await finishAll();

    expect(await after).toBe(3);
    expect(await value.get()).toBe(3);
  });

  it('keeps the last answer when a read behind it fails', async () => {
    let now = 0;
    const read = vi.fn().mockResolvedValueOnce('first').mockRejectedValue(new Error('throttled'));
    const value = kept(read, 1_000, () => new Date(now));
    await value.get();
    now = 5_000;

    const stale = await value.get();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const still = await value.get();

    expect([stale, still]).toEqual(['first', 'first']);
  });
});
