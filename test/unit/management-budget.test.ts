import { describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../shared/aws/management-budget';

describe('TokenBucket', () => {
  it('lets a burst through at once and then paces to the rate', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const bucket = new TokenBucket(5, 2, () => Date.now());
      const granted: number[] = [];
      const takers = Array.from({ length: 6 }, () => bucket.take().then(() => granted.push(Date.now())));

      await vi.advanceTimersByTimeAsync(2_000);
      await Promise.all(takers);

      // 2 at once (the burst), then one every 200 ms (5 per second).
      expect(granted.slice(0, 2)).toEqual([0, 0]);
      const gaps = granted.slice(2).map((at, i) => at - (granted[i + 1] ?? 0));
      for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(199);
      expect(granted.at(-1)).toBeLessThanOrEqual(900);
    } finally {
      vi.useRealTimers();
    }
  });

  it('never exceeds the rate over a longer run', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const bucket = new TokenBucket(2.5, 1, () => Date.now());
      let taken = 0;
      const takers = Array.from({ length: 50 }, () => bucket.take().then(() => taken++));

      await vi.advanceTimersByTimeAsync(10_000);

      // One at once, then 2.5 per second for 10 s.
      expect(taken).toBe(26);
      await vi.advanceTimersByTimeAsync(20_000);
      await Promise.all(takers);
    } finally {
      vi.useRealTimers();
    }
  });
});
