import type { ConsoleBenchResult } from './console';
import { figure, type Figure, median, percentile, round } from './stats';

/** "Well under a second" (issue 17), as the bench reads it: half a second at the 95th percentile. */
export const CONSOLE_PAGE_TARGET_MS = 500;

/**
 * Figure 8: each page's p95 time, served by the console over `keys` seeded keys, against the same
 * reads called bare; the target is the page's own time, the ratio what HTTP and HTML add.
 */
export function consoleFigures(result: ConsoleBenchResult, keys: number): Figure[] {
  const n = keys.toLocaleString('en-US');
  const row = (id: string, label: string, served: number[], bare: number[], extra: Record<string, unknown>) =>
    figure({
      id,
      group: 8,
      label,
      unit: 'ms',
      value: round(percentile(served, 95), 1),
      baseline: round(percentile(bare, 95), 1),
      target: { of: 'value', op: '<=', limit: CONSOLE_PAGE_TARGET_MS, source: 'bench' },
      details: {
        samples: served.length,
        medianMs: round(median(served), 1),
        p95Ms: round(percentile(served, 95), 1),
        bareMedianMs: round(median(bare), 1),
        bareP95Ms: round(percentile(bare, 95), 1),
        medianRatio: round(median(served) / median(bare), 3),
        ...extra,
        servedMs: served.map((ms) => round(ms, 1)),
        bareMs: bare.map((ms) => round(ms, 1)),
      },
    });
  return [
    row('console.overview', `Console overview, ${n} keys: p95`, result.overview, result.overviewReads, {
      gaugeKeys: result.gaugeKeys,
      firstOverviewMs: round(result.firstOverviewMs, 1),
      keyPassMedianMs: round(median(result.keyPass), 1),
      keyPassMs: result.keyPass.map((ms) => round(ms, 1)),
      pageBytes: result.overviewBytes,
    }),
    row('console.customer', `Console customer page, ${n} keys: p95`, result.customer, result.customerReads, { pageBytes: result.customerBytes }),
  ];
}
